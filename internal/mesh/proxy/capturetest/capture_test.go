package capturetest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// seen records the capture fields of every request's RequestInfo.
type seen struct {
	mu      sync.Mutex
	reqs    []proxy.RequestInfo
	streams []*tcpStream
}

func (s *seen) middleware() proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if info := proxy.Info(w); info != nil {
				s.mu.Lock()
				s.reqs = append(s.reqs, proxy.RequestInfo{Direction: info.Direction, FilterChain: info.FilterChain,
					OriginalDst: info.OriginalDst, PeerPrincipal: info.PeerPrincipal, Listener: info.Listener})
				s.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tcpStream records one forwarded connection.
type tcpStream struct {
	info           proxy.TCPConn
	mu             sync.Mutex
	sent, received int
	closed         bool
}

func (t *tcpStream) Received(n int) { t.mu.Lock(); t.received += n; t.mu.Unlock() }
func (t *tcpStream) Sent(n int)     { t.mu.Lock(); t.sent += n; t.mu.Unlock() }
func (t *tcpStream) Close()         { t.mu.Lock(); t.closed = true; t.mu.Unlock() }

func (s *seen) tcp(c *proxy.TCPConn) proxy.TCPStream {
	st := &tcpStream{info: *c}
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	return st
}

// closedStream waits for the last forwarded connection to be counted
// closed and returns what it counted.
func (s *seen) closedStream(t *testing.T) (info proxy.TCPConn, sent, received int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		var st *tcpStream
		if len(s.streams) > 0 {
			st = s.streams[len(s.streams)-1]
		}
		s.mu.Unlock()
		if st != nil {
			st.mu.Lock()
			closed, sent, received := st.closed, st.sent, st.received
			st.mu.Unlock()
			if closed {
				return st.info, sent, received
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no forwarded connection was counted closed")
	return
}

func (s *seen) last(t *testing.T) proxy.RequestInfo {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("no request reached the proxy's chain")
	}
	return s.reqs[len(s.reqs)-1]
}

// runProxy serves cfg until the test ends.
func runProxy(t testing.TB, cfg *proxy.Config, s *seen) *proxy.Proxy {
	t.Helper()
	opts := proxy.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownTimeout: time.Second}
	if s != nil {
		opts.Middleware = []proxy.Middleware{s.middleware()}
		opts.TCP = s.tcp
	}
	p := proxy.New(opts)
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
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
			t.Error("proxy did not stop")
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return p
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// httpBackend answers every request with its name, the Host and path.
func httpBackend(t testing.TB, addr, name string) string {
	t.Helper()
	ln := listen(t, addr)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Xfcc", r.Header.Get("X-Forwarded-Client-Cert"))
		fmt.Fprintf(w, "%s %s %s %s", name, r.Host, r.URL.Path, r.Proto)
	})}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// greeter is a server-first TCP service: it greets, then echoes what it
// reads in upper case until the client half-closes, then says bye and
// closes.
func greeter(t *testing.T, addr, name string) string {
	t.Helper()
	ln := listen(t, addr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "220 %s ready\n", name)
				b, _ := io.ReadAll(c)
				fmt.Fprintf(c, "%s bye\n", strings.ToUpper(string(b)))
			}()
		}
	}()
	return ln.Addr().String()
}

// talkToGreeter checks the server-first exchange and half-close over c.
func talkToGreeter(t *testing.T, c net.Conn, name string) {
	t.Helper()
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if want := "220 " + name + " ready\n"; line != want {
		t.Fatalf("greeting %q, want %q", line, want)
	}
	if _, err := io.WriteString(c, "quit"); err != nil {
		t.Fatal(err)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("after half-close: %v", err)
	}
	if string(rest) != "QUIT bye\n" {
		t.Fatalf("after half-close got %q", rest)
	}
}

func catchAll(name, cluster string) proxy.RouteTable {
	return proxy.RouteTable{Name: name, VirtualHosts: []proxy.VirtualHost{{Name: name, Domains: []string{"*"},
		Routes: []proxy.Route{{Name: name, Clusters: []proxy.WeightedCluster{{Cluster: cluster}}}}}}}
}

func TestOutboundCapture(t *testing.T) {
	netnsSetup(t)
	web := httpBackend(t, "127.0.0.1:0", "web")
	db := greeter(t, "127.0.0.1:0", "db")
	greeter(t, extIP+":2525", "ext")
	s := &seen{}
	cfg := &proxy.Config{
		Version:     "1",
		RouteTables: []proxy.RouteTable{catchAll("web-80", "web")},
		Clusters: []proxy.Cluster{{Name: "web", Protocol: proxy.ProtocolH2C, Endpoints: []proxy.Endpoint{{Address: web}}},
			{Name: "db", TCP: true, Endpoints: []proxy.Endpoint{{Address: db}},
				Metadata: map[string]string{"destination_service": "db.default.svc.cluster.local"}}},
		Listeners: []proxy.Listener{{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(outboundPort),
			Capture: &proxy.Capture{Direction: proxy.Outbound, Chains: []proxy.FilterChain{
				{Name: "web", Match: proxy.ChainMatch{Port: 80, Addresses: []string{svcIP}}, RouteTable: "web-80"},
				{Name: "db", Match: proxy.ChainMatch{Port: 5432, Addresses: []string{svcIP}}, TCPCluster: "db"},
			}}}},
	}
	p := runProxy(t, cfg, s)

	t.Run("http/1.1", func(t *testing.T) {
		c := dialFromClient(t, svcIP+":80")
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: web.default.svc\r\nConnection: close\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != "web web.default.svc /x HTTP/2.0" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		info := s.last(t)
		if info.Direction != proxy.Outbound || info.FilterChain != "web" || info.OriginalDst != svcIP+":80" ||
			info.Listener != "virtualOutbound" || info.PeerPrincipal != "" {
			t.Fatalf("request info %+v", info)
		}
	})

	t.Run("h2c prior knowledge", func(t *testing.T) {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
		tr := &http.Transport{Protocols: &protos, DialContext: d.DialContext}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + svcIP + "/h2")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || !strings.HasPrefix(string(body), "web "+svcIP+" /h2") {
			t.Fatalf("got %s %q", res.Proto, body)
		}
	})

	t.Run("tcp chain to a cluster, server first", func(t *testing.T) {
		talkToGreeter(t, dialFromClient(t, svcIP+":5432"), "db")
		info, sent, received := s.closedStream(t)
		if info.Cluster != "db" || info.FilterChain != "db" || info.Direction != proxy.Outbound ||
			info.OriginalDst != svcIP+":5432" || info.UpstreamHost != db || info.ClusterMetadata["destination_service"] != "db.default.svc.cluster.local" {
			t.Errorf("tcp info %+v", info)
		}
		if sent != len("220 db ready\nQUIT bye\n") || received != len("quit") {
			t.Errorf("counted %d sent, %d received", sent, received)
		}
	})

	t.Run("ipv6 original destination", func(t *testing.T) {
		greeter(t, "["+extIP6+"]:2525", "ext6")
		talkToGreeter(t, dialFromClient(t, "["+extIP6+"]:2525"), "ext6")
		if info, _, _ := s.closedStream(t); info.OriginalDst != "["+extIP6+"]:2525" {
			t.Errorf("tcp info %+v", info)
		}
	})

	t.Run("unmatched passes through, server first", func(t *testing.T) {
		talkToGreeter(t, dialFromClient(t, extIP+":2525"), "ext")
		if info, _, _ := s.closedStream(t); info.Cluster != proxy.PassthroughCluster || info.FilterChain != "" {
			t.Errorf("tcp info %+v", info)
		}
	})

	t.Run("direct connection to the capture port is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(outboundPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d, %v; want EOF", n, err)
		}
	})

	t.Run("blackhole", func(t *testing.T) {
		bh := *cfg
		bh.Version = "2"
		bh.Listeners = []proxy.Listener{cfg.Listeners[0]}
		capt := *cfg.Listeners[0].Capture
		capt.Unmatched = proxy.Blackhole
		bh.Listeners[0].Capture = &capt
		// An established connection survives the update.
		kept := dialFromClient(t, svcIP+":5432")
		if err := p.Update(&bh); err != nil {
			t.Fatal(err)
		}
		c := dialFromClient(t, extIP+":2525")
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d, %v; want EOF", n, err)
		}
		talkToGreeter(t, kept, "db")
	})
}

func TestRemovedListenerDrains(t *testing.T) {
	netnsSetup(t)
	db := greeter(t, "127.0.0.1:0", "db")
	cfg := &proxy.Config{
		Version:  "1",
		Clusters: []proxy.Cluster{{Name: "db", TCP: true, Endpoints: []proxy.Endpoint{{Address: db}}}},
		Listeners: []proxy.Listener{{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(outboundPort),
			Capture: &proxy.Capture{Direction: proxy.Outbound, Chains: []proxy.FilterChain{
				{Name: "db", Match: proxy.ChainMatch{Port: 5432}, TCPCluster: "db"}}}}},
	}
	p := runProxy(t, cfg, nil)
	c := dialFromClient(t, svcIP+":5432")
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(&proxy.Config{Version: "2"}); err != nil {
		t.Fatal(err)
	}
	// The established connection keeps working while it drains ...
	if _, err := io.WriteString(c, "still here"); err != nil {
		t.Fatal(err)
	}
	// ... and is closed after ShutdownTimeout (1s).
	start := time.Now()
	if _, err := io.ReadAll(br); err != nil && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("drained connection closed after %v", d)
	}
	// New connections are not served.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 2 * time.Second}
	if c2, err := d.Dial("tcp", svcIP+":5432"); err == nil {
		c2.Close()
		t.Fatal("a removed capture listener still accepts")
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "closed"))
}

// inboundConfig has an inbound listener with an HTTP chain on 8080 and a
// TCP chain (to the original destination) on 2525, both in mode.
func inboundConfig(version string, app string, mode proxy.MTLSMode, certPEM, keyPEM, rootsPEM []byte) *proxy.Config {
	return &proxy.Config{
		Version:     version,
		Identity:    &proxy.Identity{CertPEM: certPEM, KeyPEM: keyPEM, RootsPEM: rootsPEM},
		RouteTables: []proxy.RouteTable{catchAll("inbound-8080", "app")},
		Clusters:    []proxy.Cluster{{Name: "app", Endpoints: []proxy.Endpoint{{Address: app}}}},
		Listeners: []proxy.Listener{{Name: "virtualInbound", Address: "0.0.0.0:" + strconv.Itoa(inboundPort),
			Capture: &proxy.Capture{Direction: proxy.Inbound, Chains: []proxy.FilterChain{
				{Name: "inbound|8080", Match: proxy.ChainMatch{Port: 8080}, RouteTable: "inbound-8080", MTLS: mode},
				{Name: "inbound|2525", Match: proxy.ChainMatch{Port: 2525}, MTLS: mode},
			}}}},
	}
}

func meshGet(t *testing.T, tlsCfg *tls.Config, path string) (*http.Response, string, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return tls.DialWithDialer(d, network, addr, tlsCfg)
	}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + podIP + ":8080" + path)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func plainGet(t *testing.T, path string) (*http.Response, string, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://"+podIP+":8080"+path, nil)
	req.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://forged")
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestInboundStrictMTLS(t *testing.T) {
	netnsSetup(t)
	mesh := newCA(t)
	srvCert, srvKey := mesh.issue(t, "default", "server")
	cliCert, cliKey := mesh.issue(t, "default", "client")
	other := newCA(t)
	badCert, badKey := other.issue(t, "default", "intruder")
	app := httpBackend(t, "127.0.0.1:0", "app")
	greeter(t, podIP+":2525", "smtp")
	s := &seen{}
	p := runProxy(t, inboundConfig("1", app, proxy.MTLSStrict, srvCert, srvKey, mesh.pem), s)

	t.Run("mesh client over h2", func(t *testing.T) {
		res, body, err := meshGet(t, meshClient(t, mesh, cliCert, cliKey, "h2", "http/1.1", proxy.MeshALPN), "/hello")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.ProtoMajor != 2 || !strings.HasPrefix(body, "app ") {
			t.Fatalf("got %s %d %q", res.Proto, res.StatusCode, body)
		}
		info := s.last(t)
		if info.PeerPrincipal != "cluster.local/ns/default/sa/client" || info.Direction != proxy.Inbound ||
			info.FilterChain != "inbound|8080" || info.OriginalDst != podIP+":8080" {
			t.Fatalf("request info %+v", info)
		}
		if res.TLS == nil || len(res.TLS.PeerCertificates) == 0 ||
			res.TLS.PeerCertificates[0].URIs[0].String() != "spiffe://cluster.local/ns/default/sa/server" {
			t.Fatal("server did not present the identity")
		}
		xfcc := res.Header.Get("X-Seen-Xfcc")
		if !strings.HasPrefix(xfcc, "By=spiffe://cluster.local/ns/default/sa/server;Hash=") ||
			!strings.HasSuffix(xfcc, `;Subject="";URI=spiffe://cluster.local/ns/default/sa/client`) {
			t.Fatalf("x-forwarded-client-cert %q", xfcc)
		}
	})
	t.Run("mesh client offering only the mesh ALPN speaks HTTP/1.1", func(t *testing.T) {
		res, _, err := meshGet(t, meshClient(t, mesh, cliCert, cliKey, proxy.MeshALPN), "/")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.ProtoMajor != 1 {
			t.Fatalf("got %s %d", res.Proto, res.StatusCode)
		}
	})
	t.Run("tcp chain", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", podIP+":2525", meshClient(t, mesh, cliCert, cliKey, proxy.MeshALPN))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		talkToGreeter(t, c, "smtp")
	})
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proxy.MeshALPN}}},
		{"certificate from another CA", meshClient(t, other, badCert, badKey, proxy.MeshALPN)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := meshGet(t, tc.cfg, "/"); err == nil {
				t.Fatal("request succeeded")
			}
		})
	}
	t.Run("plaintext is refused", func(t *testing.T) {
		if res, _, err := plainGet(t, "/"); err == nil {
			t.Fatalf("plaintext request answered %d", res.StatusCode)
		}
	})
	t.Run("identity rotation applies to new handshakes", func(t *testing.T) {
		newCert, newKey := mesh.issue(t, "default", "server-rotated")
		if err := p.Update(inboundConfig("2", app, proxy.MTLSStrict, newCert, newKey, mesh.pem)); err != nil {
			t.Fatal(err)
		}
		res, _, err := meshGet(t, meshClient(t, mesh, cliCert, cliKey, "h2"), "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.TLS.PeerCertificates[0].URIs[0].String(); got != "spiffe://cluster.local/ns/default/sa/server-rotated" {
			t.Fatalf("server presented %s", got)
		}
	})
}

func TestInboundPermissive(t *testing.T) {
	netnsSetup(t)
	mesh := newCA(t)
	srvCert, srvKey := mesh.issue(t, "default", "server")
	cliCert, cliKey := mesh.issue(t, "default", "client")
	app := httpBackend(t, "127.0.0.1:0", "app")
	greeter(t, podIP+":2525", "smtp")
	s := &seen{}
	runProxy(t, inboundConfig("1", app, proxy.MTLSPermissive, srvCert, srvKey, mesh.pem), s)

	t.Run("plaintext", func(t *testing.T) {
		res, body, err := plainGet(t, "/plain")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || !strings.HasPrefix(body, "app ") {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		if info := s.last(t); info.PeerPrincipal != "" || info.FilterChain != "inbound|8080" {
			t.Fatalf("request info %+v", info)
		}
		if xfcc := res.Header.Get("X-Seen-Xfcc"); xfcc != "" {
			t.Fatalf("a client's own x-forwarded-client-cert reached the app: %q", xfcc)
		}
	})
	t.Run("mesh mTLS", func(t *testing.T) {
		res, _, err := meshGet(t, meshClient(t, mesh, cliCert, cliKey, "h2", proxy.MeshALPN), "/mtls")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.ProtoMajor != 2 {
			t.Fatalf("got %s %d", res.Proto, res.StatusCode)
		}
		if info := s.last(t); info.PeerPrincipal != "cluster.local/ns/default/sa/client" {
			t.Fatalf("request info %+v", info)
		}
	})
	t.Run("application TLS without the mesh ALPN passes as plaintext", func(t *testing.T) {
		// The app's own TLS reaches the HTTP chain as bytes it cannot
		// parse: the proxy answers 400, it does not terminate it.
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
		_, err := tls.DialWithDialer(d, "tcp", podIP+":8080", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err == nil {
			t.Fatal("the proxy terminated TLS that was not the mesh's")
		}
	})
	t.Run("server-first protocol waits for the peek, then is plaintext", func(t *testing.T) {
		c := dialFromClient(t, podIP+":2525")
		start := time.Now()
		talkToGreeter(t, c, "smtp")
		t.Logf("greeting after %v", time.Since(start))
	})
}

func TestOutboundUnknownHost(t *testing.T) {
	netnsSetup(t)
	web := httpBackend(t, "127.0.0.1:0", "web")
	httpBackend(t, extIP+":80", "ext")
	s := &seen{}
	cfg := func(unmatched proxy.UnmatchedPolicy) *proxy.Config {
		return &proxy.Config{
			Version: "1",
			RouteTables: []proxy.RouteTable{{Name: "80", VirtualHosts: []proxy.VirtualHost{{Name: "web",
				Domains: []string{"web.default.svc"},
				Routes: []proxy.Route{{Match: proxy.RouteMatch{Path: proxy.PathMatch{Kind: proxy.PathPrefix, Value: "/api"}},
					Clusters: []proxy.WeightedCluster{{Cluster: "web"}}}}}}}},
			Clusters: []proxy.Cluster{{Name: "web", Endpoints: []proxy.Endpoint{{Address: web}}}},
			Listeners: []proxy.Listener{{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(outboundPort),
				Capture: &proxy.Capture{Direction: proxy.Outbound, Unmatched: unmatched, Chains: []proxy.FilterChain{
					{Name: "0.0.0.0_80", Match: proxy.ChainMatch{Port: 80}, RouteTable: "80"}}}}},
		}
	}
	p := runProxy(t, cfg(""), s)
	get := func(host, path string) (int, string) {
		t.Helper()
		c := dialFromClient(t, extIP+":80")
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, host, path string
		code             int
		body             string
	}{
		{"known host", "web.default.svc", "/api/x", 200, "web web.default.svc /api/x HTTP/1.1"},
		{"known host, no route", "web.default.svc", "/other", 404, "404 page not found\n"},
		{"unknown host passes through", "ext.example", "/y", 200, "ext ext.example /y HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.host, tc.path)
			if code != tc.code || body != tc.body {
				t.Fatalf("got %d %q, want %d %q", code, body, tc.code, tc.body)
			}
		})
	}
	if err := p.Update(cfg(proxy.Blackhole)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("ext.example", "/y"); code != 404 {
		t.Fatalf("registry only: unknown host got %d", code)
	}
}
