package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf for a SPIFFE ID (may be empty) and DNS names.
func (ca *testCA) issue(t *testing.T, spiffe string, dns ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if spiffe != "" {
		u, _ := url.Parse(spiffe)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) identity(t *testing.T, spiffe string) *Identity {
	c, k := ca.issue(t, spiffe)
	return &Identity{CertPEM: c, KeyPEM: k, RootsPEM: ca.certPEM}
}

// tlsBackend is an HTTPS upstream that verifies client certificates it is
// given against ca, and answers with the client's SPIFFE ID (or "anonymous").
type tlsBackend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	alpn [][]string // protocols each client offered
	sni  []string
}

func newTLSBackend(t *testing.T, ca *testCA, spiffe string, dns ...string) *tlsBackend {
	t.Helper()
	b := &tlsBackend{}
	certPEM, keyPEM := ca.issue(t, spiffe, dns...)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) > 0 {
			id = r.TLS.PeerCertificates[0].URIs[0].String()
		}
		w.Header().Set("X-Proto", r.Proto)
		_, _ = io.WriteString(w, id)
	}))
	b.srv.EnableHTTP2 = true
	b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			b.mu.Lock()
			b.alpn = append(b.alpn, slices.Clone(h.SupportedProtos))
			b.sni = append(b.sni, h.ServerName)
			b.mu.Unlock()
			return nil, nil
		}}
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *tlsBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "https://") }

func (b *tlsBackend) lastHello() (alpn []string, sni string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.alpn) == 0 {
		return nil, ""
	}
	return b.alpn[len(b.alpn)-1], b.sni[len(b.sni)-1]
}

func TestUpstreamTLS(t *testing.T) {
	mesh := newTestCA(t, "mesh")
	other := newTestCA(t, "other")
	const client = "spiffe://cluster.local/ns/default/sa/client"
	const server = "spiffe://cluster.local/ns/default/sa/server"
	srv := newTLSBackend(t, mesh, server, "server.example.com")
	plain := newBackend(t, "plain", nil)
	clientCert, clientKey := other.issue(t, "spiffe://other/ns/x/sa/mutual")
	otherSrv := newTLSBackend(t, other, "spiffe://other/ns/x/sa/y", "server.example.com")
	_ = otherSrv

	for _, tc := range []struct {
		name     string
		tls      *UpstreamTLS
		endpoint Endpoint
		identity bool
		want     int
		body     string   // answer (the client identity the server saw)
		alpn     []string // offered, when checked
		sni      string
	}{
		{name: "istio mutual, any mesh identity", tls: &UpstreamTLS{Mode: TLSIstioMutual}, identity: true,
			endpoint: Endpoint{Address: srv.addr()}, want: 200, body: client, alpn: []string{MeshALPN, "http/1.1"}},
		{name: "istio mutual, SAN matches", tls: &UpstreamTLS{Mode: TLSIstioMutual, SNI: "outbound_.80_._.server", SubjectAltNames: []string{server}},
			identity: true, endpoint: Endpoint{Address: srv.addr()}, want: 200, body: client, sni: "outbound_.80_._.server"},
		{name: "istio mutual, SAN without scheme", tls: &UpstreamTLS{Mode: TLSIstioMutual, SubjectAltNames: []string{strings.TrimPrefix(server, "spiffe://")}},
			identity: true, endpoint: Endpoint{Address: srv.addr()}, want: 200, body: client},
		{name: "istio mutual, wrong SAN", tls: &UpstreamTLS{Mode: TLSIstioMutual, SubjectAltNames: []string{"spiffe://cluster.local/ns/default/sa/evil"}},
			identity: true, endpoint: Endpoint{Address: srv.addr()}, want: 502},
		{name: "istio mutual, server outside the mesh", tls: &UpstreamTLS{Mode: TLSIstioMutual}, identity: true,
			endpoint: Endpoint{Address: otherSrv.addr()}, want: 502},
		{name: "auto: mesh endpoint gets mTLS", tls: &UpstreamTLS{Mode: TLSIstioMutual, Auto: true}, identity: true,
			endpoint: Endpoint{Address: srv.addr(), Mesh: true}, want: 200, body: client},
		{name: "auto: other endpoint gets plaintext", tls: &UpstreamTLS{Mode: TLSIstioMutual, Auto: true}, identity: true,
			endpoint: Endpoint{Address: plain.addr()}, want: 200, body: "plain"},
		{name: "simple, CA and SNI", tls: &UpstreamTLS{Mode: TLSSimple, SNI: "server.example.com", CACertPEM: mesh.certPEM},
			endpoint: Endpoint{Address: srv.addr()}, want: 200, body: "anonymous", sni: "server.example.com"},
		{name: "simple, SNI not in the certificate", tls: &UpstreamTLS{Mode: TLSSimple, SNI: "evil.example.com", CACertPEM: mesh.certPEM},
			endpoint: Endpoint{Address: srv.addr()}, want: 502},
		{name: "simple, SAN list", tls: &UpstreamTLS{Mode: TLSSimple, CACertPEM: mesh.certPEM, SubjectAltNames: []string{"nope.example.com", "server.example.com"}},
			endpoint: Endpoint{Address: srv.addr()}, want: 200, body: "anonymous"},
		{name: "simple, wrong CA", tls: &UpstreamTLS{Mode: TLSSimple, CACertPEM: other.certPEM},
			endpoint: Endpoint{Address: srv.addr()}, want: 502},
		{name: "simple, insecure", tls: &UpstreamTLS{Mode: TLSSimple, InsecureSkipVerify: true},
			endpoint: Endpoint{Address: srv.addr()}, want: 200, body: "anonymous"},
		{name: "mutual", tls: &UpstreamTLS{Mode: TLSMutual, CACertPEM: other.certPEM, ClientCertPEM: clientCert, ClientKeyPEM: clientKey},
			endpoint: Endpoint{Address: otherSrv.addr()}, want: 200, body: "spiffe://other/ns/x/sa/mutual"},
		{name: "disable", tls: &UpstreamTLS{Mode: TLSDisable}, endpoint: Endpoint{Address: plain.addr()}, want: 200, body: "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", TLS: tc.tls, Endpoints: []Endpoint{tc.endpoint}})
			if tc.identity {
				cfg.Identity = mesh.identity(t, client)
			}
			flags := &flagLog{}
			_, base := start(t, cfg, func(o *Options) { o.AccessLog = flags })
			code, _, body := get(t, nil, "GET", base+"/", nil, "")
			if code != tc.want || (tc.body != "" && body != tc.body) {
				t.Fatalf("got %d %q, want %d %q", code, body, tc.want, tc.body)
			}
			if code == 502 && !strings.Contains(strings.Join(flags.all(), "\n"), "502 UF") {
				t.Errorf("access log %q, want UF", flags.all())
			}
			alpn, sni := srv.lastHello()
			if tc.alpn != nil && !slices.Equal(alpn, tc.alpn) {
				t.Errorf("ALPN offered %q, want %q", alpn, tc.alpn)
			}
			if tc.sni != "" && sni != tc.sni {
				t.Errorf("SNI %q, want %q", sni, tc.sni)
			}
		})
	}
}

// A rotated identity is used by new connections at once, on the same
// cluster (its pools kept).
func TestUpstreamIdentityRotation(t *testing.T) {
	mesh := newTestCA(t, "mesh")
	srv := newTLSBackend(t, mesh, "spiffe://cluster.local/ns/default/sa/server")
	cluster := Cluster{Name: "c", TLS: &UpstreamTLS{Mode: TLSIstioMutual},
		Pool: &ConnectionPool{MaxRequestsPerConnection: 1}, Endpoints: eps(srv.addr())}
	cfg := simple([]Route{{Clusters: to("c")}}, cluster)
	cfg.Identity = mesh.identity(t, "spiffe://cluster.local/ns/default/sa/old")
	p, base := start(t, cfg)
	if _, _, body := get(t, nil, "GET", base+"/", nil, ""); body != "spiffe://cluster.local/ns/default/sa/old" {
		t.Fatalf("first identity: %q", body)
	}
	before := p.snap.Load().clusters["c"]
	cfg2 := simple([]Route{{Clusters: to("c")}}, cluster)
	cfg2.Identity = mesh.identity(t, "spiffe://cluster.local/ns/default/sa/new")
	if err := p.Update(cfg2); err != nil {
		t.Fatal(err)
	}
	if p.snap.Load().clusters["c"] != before {
		t.Error("identity rotation replaced the cluster")
	}
	if _, _, body := get(t, nil, "GET", base+"/", nil, ""); body != "spiffe://cluster.local/ns/default/sa/new" {
		t.Fatalf("after rotation: %q", body)
	}
}

// ISTIO_MUTUAL to an h2c cluster speaks HTTP/2 inside the mTLS
// connection, offering the mesh ALPN and "h2".
func TestUpstreamMutualHTTP2(t *testing.T) {
	mesh := newTestCA(t, "mesh")
	srv := newTLSBackend(t, mesh, "spiffe://cluster.local/ns/default/sa/server")
	cfg := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Protocol: ProtocolH2C,
		TLS: &UpstreamTLS{Mode: TLSIstioMutual}, Endpoints: eps(srv.addr())})
	cfg.Identity = mesh.identity(t, "spiffe://cluster.local/ns/default/sa/client")
	_, base := start(t, cfg)
	if code, hdr, body := get(t, nil, "GET", base+"/", nil, ""); code != 200 || hdr.Get("X-Proto") != "HTTP/2.0" {
		t.Fatalf("got %d %q over %q", code, body, hdr.Get("X-Proto"))
	}
	if alpn, _ := srv.lastHello(); !slices.Equal(alpn, []string{MeshALPN, "h2"}) {
		t.Errorf("ALPN offered %q", alpn)
	}
}
