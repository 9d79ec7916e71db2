package capturetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/runtime/runtimetest"
)

func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// Addresses in the test's network namespace, all on lo. Connections from
// clientIP to a service or the pod are redirected to the capture
// listeners; the proxy's own connections (from other sources) are not,
// as a sidecar's uid 1337 is not.
const (
	clientIP = "10.1.0.1"
	svcIP    = "10.96.0.10" // a service VIP with chains
	extIP    = "10.96.0.11" // a destination no chain matches
	podIP    = "10.244.0.5" // the workload's own address

	clientIP6 = "fd00::1"
	extIP6    = "fd00::11" // an IPv6 destination no chain matches

	outboundPort = 15001
	inboundPort  = 15006
)

const rules = `
table ip capturetest {
	chain output {
		type nat hook output priority -100; policy accept;
		ip saddr ` + clientIP + ` ip daddr 10.96.0.0/16 tcp dport != 15001 redirect to :15001
		ip saddr ` + clientIP + ` ip daddr ` + podIP + ` tcp dport != 15006 redirect to :15006
	}
}
table ip6 capturetest {
	chain output {
		type nat hook output priority -100; policy accept;
		ip6 saddr ` + clientIP6 + ` ip6 daddr fd00::/64 tcp dport != 15001 redirect to :15001
	}
}
`

var (
	setupOnce sync.Once
	setupErr  error
)

// netnsSetup prepares the namespace once, or skips the test.
func netnsSetup(t testing.TB) {
	t.Helper()
	if !runtimetest.InNetNS() {
		t.Skip("capture tests need root: they run in a network namespace of their own with nftables rules")
	}
	setupOnce.Do(func() {
		cmds := [][]string{{"ip", "link", "set", "lo", "up"}}
		for _, a := range []string{clientIP, svcIP, extIP, podIP} {
			cmds = append(cmds, []string{"ip", "addr", "add", a + "/32", "dev", "lo"})
		}
		for _, a := range []string{clientIP6, extIP6} {
			cmds = append(cmds, []string{"ip", "addr", "add", a + "/128", "dev", "lo", "nodad"})
		}
		for _, c := range cmds {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				setupErr = &cmdError{c, out, err}
				return
			}
		}
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			setupErr = &cmdError{[]string{"nft", "-f", "-"}, out, err}
		}
	})
	if setupErr != nil {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("nft is missing (make test-tools installs it)")
		}
		t.Fatal(setupErr)
	}
}

type cmdError struct {
	args []string
	out  []byte
	err  error
}

func (e *cmdError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + string(e.out)
}

// dialFromClient connects from clientIP, so that the connection is
// captured.
func dialFromClient(t testing.TB, addr string) net.Conn {
	t.Helper()
	src := clientIP
	if strings.HasPrefix(addr, "[") {
		src = clientIP6
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ca is a throwaway mesh CA.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"test mesh"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a workload certificate for spiffe://cluster.local/ns/NS/sa/SA.
func (c *ca) issue(t *testing.T, ns, sa string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://cluster.local/ns/" + ns + "/sa/" + sa)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// meshClient is a TLS client config as a peer sidecar's: its identity,
// the mesh ALPN, and verification of the server's SPIFFE ID.
func meshClient(t *testing.T, c *ca, certPEM, keyPEM []byte, alpn ...string) *tls.Config {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.cert)
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		NextProtos:         alpn,
		InsecureSkipVerify: true, // SPIFFE IDs are URI SANs: verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots})
			return err
		},
	}
}

func TestMainIsInNetNS(t *testing.T) {
	if os.Geteuid() == 0 && !runtimetest.InNetNS() {
		t.Fatal("as root the tests must run in their own network namespace")
	}
}
