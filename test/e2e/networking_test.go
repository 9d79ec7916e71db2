package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// TestServiceNetworking is the workshop's networking days on one node:
// a Deployment exposed as a LoadBalancer answers on its ClusterIP from a
// pod, on its NodePort from the node and on its EXTERNAL-IP from a client
// outside the node, spread over every replica; cluster DNS answers Service,
// headless, SRV, ExternalName and outside names (through a fake upstream);
// an Ingress routes three prefixes, a host and TLS by SNI; a NetworkPolicy
// admits only labelled pods; bad Services fail fast.
//
// The node's namespace is linked to a "client" namespace by a veth pair on
// 203.0.113.0/24 (node .1, client .2); LoadBalancer addresses come from
// 203.0.113.100-110 and are answered by ARP on that link; the client runs
// the node's upstream DNS server.
func TestServiceNetworking(t *testing.T) {
	var clientNS, resolvConf string
	c := startCluster(t, func(c *cluster) {
		clientNS = filepath.Join(c.dir, "client.netns")
		if err := netns.Create(clientNS); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netns.Delete(clientNS) })
		linkNodeAndClient(t, c.ns, clientNS)
		startFakeUpstream(t, clientNS)
		resolvConf = filepath.Join(c.dir, "resolv.conf")
		os.WriteFile(resolvConf, []byte("nameserver 203.0.113.2\n"), 0o644)
		c.args = append(c.args, "--lb-pool", "203.0.113.100-203.0.113.110", "--resolv-conf", resolvConf)
	})
	k := c.mustKubectl
	wget := func(ns string, url string, extra ...string) (string, error) {
		return inNetNS(ns, "", append(append([]string{runtimetest.BusyboxPath, "timeout", "5", runtimetest.BusyboxPath, "wget", "-qO-"}, extra...), url)...)
	}
	// spread fetches url n times through get and counts the answers.
	spread := func(n int, get func() (string, error)) map[string]int {
		seen := map[string]int{}
		for range n {
			out, err := get()
			if err != nil {
				seen["error: "+strings.TrimSpace(out)]++
				continue
			}
			seen[strings.TrimSpace(out)]++
		}
		return seen
	}
	allHello := func(seen map[string]int, want int) bool {
		hosts := 0
		for k := range seen {
			if !strings.HasPrefix(k, "hello-") {
				return false
			}
			hosts++
		}
		return hosts == want
	}

	// The workshop's flow: create, expose as a LoadBalancer.
	k("", "create", "deployment", "hello", "--image=skiff.local/busybox:1", "--replicas=3", "--port=8080",
		"--", "sh", "-c", "hostname > /index.html && exec httpd -f -p 8080 -h /")
	k("", "rollout", "status", "deployment/hello", "--timeout=90s")
	k("", "expose", "deployment", "hello", "--type=LoadBalancer", "--port=80", "--target-port=8080")
	c.waitFor("the EXTERNAL-IP", func() bool {
		out, _ := c.kubectl("", "get", "svc", "hello", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		return out == "203.0.113.100"
	})
	svc := k("", "get", "svc", "hello")
	if !strings.Contains(svc, "LoadBalancer") || !strings.Contains(svc, "10.") || !strings.Contains(svc, "203.0.113.100") || !strings.Contains(svc, "80:3") {
		t.Fatalf("kubectl get svc:\n%s", svc)
	}
	clusterIP := k("", "get", "svc", "hello", "-o", "jsonpath={.spec.clusterIP}")
	nodePort := k("", "get", "svc", "hello", "-o", "jsonpath={.spec.ports[0].nodePort}")

	k("", "run", "client", "--image=skiff.local/busybox:1", "--", "sleep", "3600")
	k("", "wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
	inPod := func(pod, script string) string {
		out, _ := c.kubectl("", "exec", pod, "--", "sh", "-c", script)
		return out
	}
	loop := func(n int, url string) string {
		return fmt.Sprintf("for i in $(seq %d); do timeout 3 wget -qO- %s || echo failed; done", n, url)
	}
	count := func(out string) map[string]int {
		seen := map[string]int{}
		for _, l := range strings.Fields(out) {
			seen[l]++
		}
		return seen
	}

	// ClusterIP from a pod, NodePort from the node, EXTERNAL-IP from outside: every replica answers.
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last answers: %s", last)
			out, _ := c.inNode("", "nft", "list", "ruleset")
			t.Logf("node ruleset:\n%s", out)
		}
	})
	c.waitFor("the ClusterIP to spread over 3 pods", func() bool {
		last = inPod("client", loop(30, "http://"+clusterIP+"/index.html"))
		return allHello(count(last), 3)
	})
	c.waitFor("the NodePort to spread over 3 pods", func() bool {
		return allHello(spread(20, func() (string, error) { return wget(c.ns, "http://203.0.113.1:"+nodePort+"/index.html") }), 3)
	})
	c.waitFor("the EXTERNAL-IP to spread over 3 pods", func() bool {
		return allHello(spread(20, func() (string, error) { return wget(clientNS, "http://203.0.113.100/index.html") }), 3)
	})

	// Cluster DNS from a pod.
	for _, name := range []string{"hello", "hello.default", "hello.default.svc.cluster.local"} {
		if out := inPod("client", "timeout 3 wget -qO- http://"+name+"/index.html"); !strings.HasPrefix(out, "hello-") {
			t.Errorf("GET http://%s/ from a pod: %q", name, out)
		}
	}
	k("", "create", "service", "clusterip", "hello-headless", "--clusterip=None", "--tcp=80:8080")
	k("", "patch", "service", "hello-headless", "-p", `{"spec":{"selector":{"app":"hello"}}}`)
	k("", "create", "service", "externalname", "ext", "--external-name=example.test")
	c.waitFor("headless records for the 3 pods", func() bool {
		out := inPod("client", "nslookup hello-headless.default.svc.cluster.local")
		return strings.Count(out, "10.244.0.") == 3
	})
	if out := inPod("client", "nslookup -type=SRV _80-8080._tcp.hello-headless.default.svc.cluster.local"); !strings.Contains(out, "hello-headless.default.svc.cluster.local") || !strings.Contains(out, "8080") {
		t.Errorf("SRV lookup:\n%s", out)
	}
	if out := inPod("client", "nslookup ext"); !strings.Contains(out, "example.test") || !strings.Contains(out, "198.51.100.7") {
		t.Errorf("ExternalName lookup:\n%s", out)
	}
	if out := inPod("client", "nslookup example.test"); !strings.Contains(out, "198.51.100.7") {
		t.Errorf("forwarded lookup:\n%s", out)
	}

	// Scaling changes the spread.
	k("", "scale", "deployment", "hello", "--replicas=1")
	c.waitFor("the EXTERNAL-IP to reach the one pod left", func() bool {
		return allHello(spread(10, func() (string, error) { return wget(clientNS, "http://203.0.113.100/index.html") }), 1)
	})

	// Ingress: three prefixes, a host, TLS by SNI, a missing backend.
	for _, app := range []string{"ui", "productms", "productreviewms"} {
		k("", "create", "deployment", app, "--image=skiff.local/busybox:1", "--port=8080", "--",
			"sh", "-c", "mkdir -p /www/"+app+" && echo "+app+" > /www/"+app+"/index.html && exec httpd -f -p 8080 -h /www")
		k("", "expose", "deployment", app, "--port=80", "--target-port=8080")
	}
	certFile, keyFile, pool := selfSigned(t, c.dir, "secure.example")
	k("", "create", "secret", "tls", "secure", "--cert="+certFile, "--key="+keyFile)
	k(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls:
  - {hosts: [secure.example], secretName: secure}
  rules:
  - http:
      paths:
      - {path: /ui, pathType: Prefix, backend: {service: {name: ui, port: {number: 80}}}}
      - {path: /productms, pathType: Prefix, backend: {service: {name: productms, port: {number: 80}}}}
      - {path: /productreviewms, pathType: Prefix, backend: {service: {name: productreviewms, port: {number: 80}}}}
      - {path: /missing, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
  - host: hello.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: hello, port: {number: 80}}}}
  - host: secure.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: hello, port: {number: 80}}}}
`, "apply", "-f", "-")
	for _, app := range []string{"ui", "productms", "productreviewms"} {
		c.waitFor("the Ingress to route /"+app, func() bool {
			out, err := wget(clientNS, "http://203.0.113.1/"+app+"/index.html")
			return err == nil && strings.TrimSpace(out) == app
		})
	}
	if out, err := wget(clientNS, "http://203.0.113.1/index.html", "--header", "Host: hello.example"); err != nil || !strings.HasPrefix(out, "hello-") {
		t.Errorf("host rule: %v %q", err, out)
	}
	if out, _ := wget(clientNS, "http://203.0.113.1/missing/"); !strings.Contains(out, "503") {
		t.Errorf("a path to a missing Service: %q, want 503", out)
	}
	c.waitFor("an event about the missing Service", func() bool {
		out, _ := c.kubectl("", "describe", "ingress", "web")
		return strings.Contains(out, "missing")
	})
	checkTLS(t, clientNS, "203.0.113.1:443", "secure.example", pool)
	c.waitFor("the Ingress status", func() bool {
		out, _ := c.kubectl("", "get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		return out != ""
	})

	// Bad Services fail fast: nothing selected, a target port name no container has.
	k("", "create", "service", "clusterip", "nothing", "--tcp=80:8080")
	k("", "expose", "deployment", "hello", "--name=badport", "--port=80", "--target-port=nope")
	for _, name := range []string{"nothing", "badport"} {
		start := time.Now()
		out := inPod("client", "timeout 10 wget -qO- http://"+name+"/ 2>&1; true")
		if !strings.Contains(out, "refused") {
			t.Errorf("GET http://%s/ (no endpoints): %q after %v, want connection refused", name, out, time.Since(start))
		}
	}

	// NetworkPolicy: only pods labelled zone=prod reach hello.
	helloIP := k("", "get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[0].status.podIP}")
	k(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: hello-prod-only}
spec:
  podSelector: {matchLabels: {app: hello}}
  ingress:
  - from:
    - podSelector: {matchLabels: {zone: prod}}
`, "apply", "-f", "-")
	reach := func() bool {
		return strings.HasPrefix(inPod("client", "timeout 1 wget -qO- http://"+helloIP+":8080/index.html"), "hello-")
	}
	c.waitFor("the policy to block the client", func() bool { return !reach() })
	k("", "label", "pod", "client", "zone=prod")
	c.waitFor("the policy to admit a prod pod", reach)
	k("", "delete", "networkpolicy", "hello-prod-only")
	k("", "label", "pod", "client", "zone-")
	c.waitFor("everyone to reach hello again", reach)
}

// linkNodeAndClient joins the node's and the client's namespaces with a
// veth pair on 203.0.113.0/24; the node's default route points at the
// client (so the node has a route for Service addresses).
func linkNodeAndClient(t *testing.T, nodeNS, clientNS string) {
	t.Helper()
	err := netns.Do(nodeNS, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "client0"}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("client0")
		if err != nil {
			return err
		}
		f, err := netns.Open(clientNS)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := netlink.LinkSetNsFd(peer, int(f.Fd())); err != nil {
			return err
		}
		return configureLink("uplink0", "203.0.113.1/24", "203.0.113.2")
	})
	if err == nil {
		err = netns.Do(clientNS, func() error { return configureLink("client0", "203.0.113.2/24", "") })
	}
	if err != nil {
		t.Fatalf("link node and client: %v", err)
	}
}

func configureLink(name, cidr, gateway string) error {
	for _, n := range []string{"lo", name} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
	}
	l, _ := netlink.LinkByName(name)
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	if gateway == "" {
		return nil
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gateway)})
}

// startFakeUpstream answers example.test A 198.51.100.7 on 203.0.113.2:53
// in the client's namespace: the "internet" resolver the node forwards to.
func startFakeUpstream(t *testing.T, clientNS string) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(clientNS, func() (err error) {
		pc, err = net.ListenPacket("udp", "203.0.113.2:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; strings.EqualFold(q.Name, "example.test.") && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.test. 60 IN A 198.51.100.7")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
}

// selfSigned writes a self-signed certificate for host and returns its
// files and a pool trusting it.
func selfSigned(t *testing.T, dir, host string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// checkTLS connects from ns with SNI host and verifies the certificate
// against pool.
func checkTLS(t *testing.T, ns, addr, host string, pool *x509.CertPool) {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		lastErr = netns.Do(ns, func() error {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{ServerName: host, RootCAs: pool})
			if err != nil {
				return err
			}
			return conn.Close()
		})
		if lastErr == nil {
			return
		}
	}
	t.Fatalf("TLS to %s as %s: %v", addr, host, lastErr)
}
