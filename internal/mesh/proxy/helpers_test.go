package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// run starts p for the test and stops it at cleanup.
func run(t testing.TB, p *Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop in 10s")
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
}

// start runs a proxy with cfg and returns it and the base URL of its
// listener "main".
func start(t testing.TB, cfg *Config, opts ...func(*Options)) (*Proxy, string) {
	t.Helper()
	o := Options{Logger: testLogger(t), ShutdownTimeout: time.Second}
	for _, f := range opts {
		f(&o)
	}
	p := New(o)
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
	run(t, p)
	a := p.Addr("main")
	if a == nil {
		return p, ""
	}
	return p, "http://" + a.String()
}

// backend is a named test upstream that answers with its name and
// records what it saw.
type backend struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	last *http.Request
	hits int
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.last = r.Clone(context.Background())
		b.hits++
		b.mu.Unlock()
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func (b *backend) seen() (*http.Request, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.hits
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// simple is a config with one plain listener "main" on a free port and
// one catch-all virtual host with routes.
func simple(routes []Route, clusters ...Cluster) *Config {
	return &Config{
		Version:     "v1",
		Listeners:   []Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
		RouteTables: []RouteTable{{Name: "rt", VirtualHosts: []VirtualHost{{Name: "all", Domains: []string{"*"}, Routes: routes}}}},
		Clusters:    clusters,
	}
}

func to(cluster string) []WeightedCluster { return []WeightedCluster{{Cluster: cluster}} }

func eps(addrs ...string) []Endpoint {
	var out []Endpoint
	for _, a := range addrs {
		out = append(out, Endpoint{Address: a})
	}
	return out
}

// get does one request and returns status and body.
func get(t testing.TB, c *http.Client, method, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return res.StatusCode, res.Header, string(b)
}

// logBuffer is an access log in memory.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// selfSigned makes a certificate for names, signed by itself, and returns
// PEM cert and key and the parsed certificate.
func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}
