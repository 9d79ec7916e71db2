package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestSNIAndHTTP2OverTLS(t *testing.T) {
	aCert, aKey, aX509 := selfSigned(t, "a.example.com")
	bCert, bKey, bX509 := selfSigned(t, "*.b.example.com")
	dCert, dKey, dX509 := selfSigned(t, "default.invalid")
	oCert, oKey, oX509 := selfSigned(t, "not-this-name.test")
	bk := newBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	})
	cfg := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	cfg.Certificates = []Certificate{
		{Name: "a", CertPEM: aCert, KeyPEM: aKey},
		{Name: "b", CertPEM: bCert, KeyPEM: bKey},
		{Name: "d", CertPEM: dCert, KeyPEM: dKey},
		{Name: "o", CertPEM: oCert, KeyPEM: oKey, Hosts: []string{"override.test"}},
	}
	cfg.Listeners = []Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt",
		TLS: &ListenerTLS{Certificates: []string{"a", "b", "d", "o"}, DefaultCertificate: "d"}}}
	p, _ := start(t, cfg)
	addr := p.Addr("main").String()

	for _, tc := range []struct {
		sni  string
		want *x509.Certificate
	}{
		{"a.example.com", aX509},
		{"A.Example.com", aX509},
		{"x.b.example.com", bX509},
		{"y.x.b.example.com", dX509}, // a certificate wildcard covers one label
		{"override.test", oX509},
		{"unknown.org", dX509},
		{"", dX509},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("sni %q: %v", tc.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !got.Equal(tc.want) {
			t.Errorf("sni %q: got certificate for %v, want %v", tc.sni, got.DNSNames, tc.want.DNSNames)
		}
	}

	// A verifying client speaking HTTP/2.
	pool := x509.NewCertPool()
	pool.AddCert(aX509)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "a.example.com"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = "a.example.com"
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Proto != "HTTP/2.0" || res.StatusCode != 200 || string(body) != "https" {
		t.Errorf("got %s %d %q, want HTTP/2.0 200 \"https\"", res.Proto, res.StatusCode, body)
	}
}

func TestH2CEndToEndWithTrailers(t *testing.T) {
	// An h2c upstream that checks it is spoken to in HTTP/2 and answers
	// with a gRPC-style trailer.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	up := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = io.WriteString(w, r.Proto+" te="+r.Header.Get("Te")+" body="+string(body))
		w.Header().Set("Grpc-Status", "0")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })

	cfg := simple([]Route{{Clusters: to("grpc")}}, Cluster{Name: "grpc", Protocol: ProtocolH2C, Endpoints: eps(ln.Addr().String())})
	cfg.Listeners[0].H2C = true
	_, base := start(t, cfg)

	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", base+"/pkg.Service/Method", strings.NewReader("msg"))
	req.Header.Set("Te", "trailers")
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Proto != "HTTP/2.0" || string(body) != "HTTP/2.0 te=trailers body=msg" {
		t.Errorf("got %s %q", res.Proto, body)
	}
	if got := res.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status = %q, want 0 (trailers %v)", got, res.Trailer)
	}
}
