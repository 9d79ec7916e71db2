package control

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// gatewayServeCase is a Gateway setup whose services are loopback
// backends (%d: the productpage, reviews-v1 and reviews-v2 ports).
const gatewayServeCase = `
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-0
  namespace: istio-system
  labels: {istio: ingressgateway}
  annotations: {test.skiff.dev/proxy: "true"}
spec: {containers: [{name: proxy, image: proxy}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec: {containers: [{name: app, image: app}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}
spec: {containers: [{name: app, image: app}]}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: productpage-x1, namespace: default, labels: {kubernetes.io/service-name: productpage}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.0.21
  ports: [{name: http, port: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-v1, namespace: default, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1], targetRef: {kind: Pod, name: reviews-v1, namespace: default}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-v2, namespace: default, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.2], targetRef: {kind: Pod, name: reviews-v2, namespace: default}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: v1
kind: Secret
metadata: {name: bookinfo-cert, namespace: istio-system}
type: kubernetes.io/tls
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8080, name: http-redirect, protocol: HTTP}
    hosts: ["bookinfo.example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: [bookinfo.example.com]
  gateways: [istio-system/ingress]
  http:
  - match: [{uri: {prefix: /reviews}, headers: {x-canary: {exact: "yes"}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews, subset: v1}}]
    headers: {response: {set: {x-route: reviews-v1}}}
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: productpage}}]
`

// TestGatewayServes runs a proxy with a gateway fragment on loopback and
// sends requests through it to backends: routing by host, path and
// header to subsets, 404 for what no VirtualService routes, the https
// redirect, and TLS by SNI with the Secret's certificate.
func TestGatewayServes(t *testing.T) {
	backend := func(name string) (*httptest.Server, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if name == "reviews-v2" {
			ln, err = net.Listen("tcp", "127.0.0.2:0")
		}
		if err != nil {
			t.Skipf("loopback address: %v", err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.Path)
		}))
		s.Listener.Close()
		s.Listener = ln
		s.Start()
		t.Cleanup(s.Close)
		return s, ln.Addr().(*net.TCPAddr).Port
	}
	_, pp := backend("productpage")
	_, r1 := backend("reviews-v1")
	_, r2 := backend("reviews-v2")

	crt, err := os.ReadFile("testdata/gateway/https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := pemBlock(t, string(crt), "CERTIFICATE"), pemBlock(t, string(crt), "PRIVATE KEY")
	snap, in, gopts := loadGatewayCase(t, []byte(fmt.Sprintf(gatewayServeCase, pp, r1, r2)))
	for _, s := range in.Secrets {
		s.Data = map[string][]byte{"tls.crt": []byte(certPEM), "tls.key": []byte(keyPEM)}
	}
	gopts.Addresses = map[uint32]string{80: "127.0.0.1:0", 8080: "127.0.0.1:0", 443: "127.0.0.1:0"}
	cfg, warnings := TranslateGateway(snap, in, MeshOptions{}, gopts)
	if cfg == nil || len(warnings) > 0 {
		t.Fatalf("translation: %v", warnings)
	}
	p := proxy.New(proxy.Options{})
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("proxy: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy not ready")
	}
	addr := func(port uint32) string { return p.Addr(GatewayListenerName(port)).String() }

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(certPEM))
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "bookinfo.example.com"},
			// Every name goes to the listener asked for.
			DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", a)
			},
		},
	}
	for _, tc := range []struct {
		name, url, host string
		header          map[string]string
		status          int
		body, location  string
		respHeader      [2]string
	}{
		{name: "exact path", url: "http://" + addr(80) + "/productpage", host: "bookinfo.example.com",
			status: 200, body: "productpage bookinfo.example.com /productpage"},
		{name: "prefix to subset v1 with response header", url: "http://" + addr(80) + "/reviews/1", host: "bookinfo.example.com",
			status: 200, body: "reviews-v1 bookinfo.example.com /reviews/1", respHeader: [2]string{"X-Route", "reviews-v1"}},
		{name: "header to subset v2", url: "http://" + addr(80) + "/reviews/1", host: "bookinfo.example.com:80",
			header: map[string]string{"x-canary": "yes"}, status: 200, body: "reviews-v2 bookinfo.example.com:80 /reviews/1"},
		{name: "unrouted path", url: "http://" + addr(80) + "/nothing", host: "bookinfo.example.com", status: 404},
		{name: "unknown host", url: "http://" + addr(80) + "/productpage", host: "other.example.com", status: 404},
		{name: "https redirect", url: "http://" + addr(8080) + "/productpage?x=1", host: "bookinfo.example.com",
			status: 301, location: "https://bookinfo.example.com/productpage?x=1"},
		{name: "tls by SNI", url: "https://" + addr(443) + "/productpage", host: "bookinfo.example.com",
			status: 200, body: "productpage bookinfo.example.com /productpage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
			if k := tc.respHeader[0]; k != "" && resp.Header.Get(k) != tc.respHeader[1] {
				t.Errorf("%s %q, want %q", k, resp.Header.Get(k), tc.respHeader[1])
			}
		})
	}
}

// pemBlock cuts the first PEM block of type kind out of an indented YAML
// text.
func pemBlock(t *testing.T, text, kind string) string {
	t.Helper()
	begin, end := "-----BEGIN "+kind+"-----", "-----END "+kind+"-----"
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("no %s in the test data", kind)
	}
	var lines []string
	for l := range strings.SplitSeq(text[i:j+len(end)], "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.Join(lines, "\n") + "\n"
}
