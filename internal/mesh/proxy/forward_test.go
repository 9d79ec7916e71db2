package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"skiff.dev/skiff/internal/errdefs"
)

func TestWeightedClusters(t *testing.T) {
	a := newBackend(t, "a", nil)
	b := newBackend(t, "b", nil)
	cfg := simple([]Route{{Clusters: []WeightedCluster{{Cluster: "a", Weight: 80}, {Cluster: "b", Weight: 20}}}},
		Cluster{Name: "a", Endpoints: eps(a.addr())}, Cluster{Name: "b", Endpoints: eps(b.addr())})
	_, base := start(t, cfg)
	const n = 2000
	counts := map[string]int{}
	for range n {
		_, _, body := get(t, nil, "GET", base+"/", nil, "")
		counts[body]++
	}
	share := float64(counts["a"]) / n
	if math.Abs(share-0.8) > 0.05 {
		t.Errorf("a got %.3f of requests (%v), want 0.80±0.05", share, counts)
	}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	var addrs []string
	var bs []*backend
	for i := range 3 {
		b := newBackend(t, fmt.Sprint(i), nil)
		bs = append(bs, b)
		addrs = append(addrs, b.addr())
	}
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(addrs...)}))
	for range 30 {
		get(t, nil, "GET", base+"/", nil, "")
	}
	for _, b := range bs {
		if _, hits := b.seen(); hits != 10 {
			t.Errorf("backend %s got %d of 30 requests, want 10", b.name, hits)
		}
	}
}

func TestRetryToAnotherEndpointWhenConnectFails(t *testing.T) {
	live := newBackend(t, "live", nil)
	dead := closedAddr(t)
	log := &logBuffer{}
	_, base := start(t, simple([]Route{{Name: "r", Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(dead, live.addr())}),
		func(o *Options) { o.AccessLog = NewTextAccessLog(log) })
	for i := range 10 {
		code, _, body := get(t, nil, "POST", base+"/", nil, "payload")
		if code != 200 || body != "live" {
			t.Fatalf("request %d: %d %q, want 200 from live", i, code, body)
		}
	}
	if r, _ := live.seen(); r == nil {
		t.Fatal("live saw nothing")
	}

	// With every endpoint refusing: 502, flagged UF and URX.
	_, base = start(t, simple([]Route{{Name: "r", Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(dead)}),
		func(o *Options) { o.AccessLog = NewTextAccessLog(log) })
	code, _, _ := get(t, nil, "GET", base+"/down", nil, "")
	if code != http.StatusBadGateway {
		t.Errorf("all endpoints down: %d, want 502", code)
	}
	if line := lastLine(log.String()); !strings.Contains(line, `"GET /down HTTP/1.1" 502 UF,URX`) {
		t.Errorf("access log line %q lacks 502 UF,URX", line)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestNoEndpointsIs503(t *testing.T) {
	log := &logBuffer{}
	_, base := start(t, simple([]Route{{Clusters: to("empty")}}, Cluster{Name: "empty"}),
		func(o *Options) { o.AccessLog = NewTextAccessLog(log) })
	code, _, body := get(t, nil, "GET", base+"/", nil, "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no healthy upstream") {
		t.Errorf("got %d %q, want 503 no healthy upstream", code, body)
	}
	if !strings.Contains(log.String(), " 503 UH ") {
		t.Errorf("access log %q lacks 503 UH", log.String())
	}
}

func TestNoRouteIs404(t *testing.T) {
	log := &logBuffer{}
	cfg := simple(nil)
	cfg.RouteTables[0].VirtualHosts[0].Domains = []string{"only.example"}
	_, base := start(t, cfg, func(o *Options) { o.AccessLog = NewTextAccessLog(log) })
	if code, _, _ := get(t, nil, "GET", base+"/", nil, ""); code != 404 {
		t.Errorf("got %d, want 404", code)
	}
	if !strings.Contains(log.String(), " 404 NR ") {
		t.Errorf("access log %q lacks 404 NR", log.String())
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newBackend(t, "fast", nil)
	log := &logBuffer{}
	cfg := simple([]Route{
		{Name: "route-timeout", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/slow"}},
			Clusters: to("slow"), Timeout: 100 * time.Millisecond},
		{Name: "per-try", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/retry"}},
			Clusters: to("mixed"), Timeout: 5 * time.Second,
			Retry: &RetryPolicy{Attempts: 1, PerTryTimeout: 100 * time.Millisecond, On: []RetryOn{RetryGatewayError}}},
	},
		Cluster{Name: "slow", Endpoints: eps(slow.addr())},
		Cluster{Name: "mixed", Endpoints: eps(slow.addr(), fast.addr())})
	_, base := start(t, cfg, func(o *Options) { o.AccessLog = NewTextAccessLog(log) })

	code, _, body := get(t, nil, "GET", base+"/slow", nil, "")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "upstream request timeout") {
		t.Errorf("route timeout: %d %q, want 504", code, body)
	}
	if !strings.Contains(log.String(), " 504 UT ") {
		t.Errorf("access log %q lacks 504 UT", log.String())
	}
	// Round robin starts anywhere; every request gets an answer from
	// fast, within its first or second try.
	for range 4 {
		if code, _, body := get(t, nil, "GET", base+"/retry", nil, ""); code != 200 || body != "fast" {
			t.Errorf("per-try timeout then retry: %d %q, want 200 fast", code, body)
		}
	}
}

func TestRetryOnStatusKeepsBody(t *testing.T) {
	var calls atomic.Int32
	flaky := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "got %s", b)
	}
	bk := newBackend(t, "flaky", flaky)
	_, base := start(t, simple([]Route{{Clusters: to("c"), Retry: &RetryPolicy{Attempts: 2, On: []RetryOn{Retry5xx}}}},
		Cluster{Name: "c", Endpoints: eps(bk.addr())}))
	for range 5 {
		code, _, body := get(t, nil, "POST", base+"/", nil, "hello")
		if code != 200 || body != "got hello" {
			t.Errorf("got %d %q, want 200 \"got hello\"", code, body)
		}
	}
}

func TestRedirects(t *testing.T) {
	cfg := simple([]Route{
		{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/old"}},
			Redirect: &Redirect{PrefixRewrite: "/new", Code: 308}},
		{Match: RouteMatch{Path: PathMatch{Kind: PathExact, Value: "/secure"}},
			Redirect: &Redirect{Scheme: "https", Host: "example.com", StripQuery: true}},
		{Match: RouteMatch{Path: PathMatch{Kind: PathExact, Value: "/port"}},
			Redirect: &Redirect{Port: 8443, Path: "/elsewhere", Code: 302}},
	})
	_, base := start(t, cfg)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cases := []struct {
		path, host, wantLoc string
		wantCode            int
	}{
		{"/old/a/b?x=1", "site.test", "http://site.test/new/a/b?x=1", 308},
		{"/old", "site.test:8080", "http://site.test:8080/new", 308},
		{"/secure?x=1", "site.test:8080", "https://example.com/secure", 301},
		{"/port", "site.test", "http://site.test:8443/elsewhere", 302},
	}
	for _, tc := range cases {
		code, h, _ := get(t, c, "GET", base+tc.path, map[string]string{"Host": tc.host}, "")
		if code != tc.wantCode || h.Get("Location") != tc.wantLoc {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, h.Get("Location"), tc.wantCode, tc.wantLoc)
		}
	}
}

func TestHeadersRewriteAndForwarded(t *testing.T) {
	bk := newBackend(t, "b", nil)
	cfg := simple([]Route{{
		Match:    RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/app"}},
		Clusters: []WeightedCluster{{Cluster: "c", RequestHeaders: HeaderOps{Set: []Header{{Name: "x-target", Value: "c"}}}}},
		Rewrite:  &Rewrite{Prefix: "/", Host: "internal.svc"},
		RequestHeaders: HeaderOps{
			Set:    []Header{{Name: "x-set", Value: "new"}},
			Add:    []Header{{Name: "x-add", Value: "two"}},
			Remove: []string{"x-secret"},
		},
		ResponseHeaders: HeaderOps{Set: []Header{{Name: "x-served-by", Value: "skiff"}}, Remove: []string{"x-backend"}},
	}}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	_, base := start(t, cfg)
	code, h, _ := get(t, nil, "GET", base+"/app/items?id=7", map[string]string{
		"Host": "shop.test", "X-Set": "old", "X-Add": "one", "X-Secret": "s3cret",
		"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Request-Id": "req-1",
		"Connection": "X-Hop", "X-Hop": "dropped",
	}, "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if h.Get("X-Served-By") != "skiff" || h.Get("X-Backend") != "" {
		t.Errorf("response headers %v: want X-Served-By and no X-Backend", h)
	}
	r, _ := bk.seen()
	checks := map[string]string{
		"path":              r.URL.Path,
		"query":             r.URL.RawQuery,
		"host":              r.Host,
		"X-Set":             r.Header.Get("X-Set"),
		"X-Add":             strings.Join(r.Header.Values("X-Add"), ","),
		"X-Secret":          r.Header.Get("X-Secret"),
		"X-Target":          r.Header.Get("X-Target"),
		"X-Forwarded-For":   r.Header.Get("X-Forwarded-For"),
		"X-Forwarded-Proto": r.Header.Get("X-Forwarded-Proto"),
		"X-Forwarded-Host":  r.Header.Get("X-Forwarded-Host"),
		"X-Request-Id":      r.Header.Get("X-Request-Id"),
		"X-Hop":             r.Header.Get("X-Hop"),
	}
	want := map[string]string{
		"path": "/items", "query": "id=7", "host": "internal.svc", "X-Set": "new", "X-Add": "one,two",
		"X-Secret": "", "X-Target": "c", "X-Forwarded-For": "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.test", "X-Request-Id": "req-1", "X-Hop": "",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("upstream saw %s = %q, want %q", k, checks[k], w)
		}
	}

	// Without a client request id the proxy makes one (UUID v4); without
	// a User-Agent none is added.
	req, _ := http.NewRequest("GET", base+"/app", nil)
	req.Header.Set("User-Agent", "")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	r, _ = bk.seen()
	if id := r.Header.Get("X-Request-Id"); len(id) != 36 || id[14] != '4' {
		t.Errorf("generated request id %q is not a UUID v4", id)
	}
	if ua, ok := r.Header["User-Agent"]; ok {
		t.Errorf("upstream got User-Agent %q, the client sent none", ua)
	}
}

func TestWebSocketThroughProxy(t *testing.T) {
	ws := newBackend(t, "ws", websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}).ServeHTTP)
	_, base := start(t, simple([]Route{{Clusters: to("ws"), Timeout: 50 * time.Millisecond}}, Cluster{Name: "ws", Endpoints: eps(ws.addr())}))
	conn, err := websocket.Dial("ws"+strings.TrimPrefix(base, "http")+"/echo", "", "http://origin.test/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Longer than the route timeout: it bounds only the handshake.
	time.Sleep(100 * time.Millisecond)
	for _, msg := range []string{"hello", strings.Repeat("x", 100_000)} {
		if err := websocket.Message.Send(conn, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(conn, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Errorf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	bk := newBackend(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	})
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())}))
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(release)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestLeastRequestAvoidsBusyEndpoint(t *testing.T) {
	release := make(chan struct{})
	var held sync.WaitGroup
	busy := newBackend(t, "busy", func(w http.ResponseWriter, r *http.Request) {
		held.Done()
		<-release
	})
	idle := newBackend(t, "idle", nil)
	_, base := start(t, simple([]Route{{Clusters: to("c")}},
		Cluster{Name: "c", LB: LBLeastRequest, Endpoints: eps(busy.addr(), idle.addr())}))
	// Send requests until one is held by busy (the others go to idle).
	held.Add(1)
	var inflight sync.WaitGroup
	inflight.Go(func() {
		for {
			res, err := http.Get(base + "/")
			if err != nil {
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) != "idle" {
				return // it was held by busy
			}
		}
	})
	held.Wait()
	for range 20 {
		if _, _, body := get(t, nil, "GET", base+"/", nil, ""); body != "idle" {
			t.Errorf("least-request sent a request to %q with one in flight there", body)
		}
	}
	close(release)
	inflight.Wait()
}

func TestSetEndpointsAndBadConfigKeepsLastGood(t *testing.T) {
	a := newBackend(t, "a", nil)
	b := newBackend(t, "b", nil)
	p, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(a.addr())}))
	if err := p.SetEndpoints("c", eps(b.addr())); err != nil {
		t.Fatal(err)
	}
	if _, _, body := get(t, nil, "GET", base+"/", nil, ""); body != "b" {
		t.Errorf("after SetEndpoints got %q, want b", body)
	}
	if err := p.SetEndpoints("nope", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("SetEndpoints on unknown cluster: %v", err)
	}

	bad := []struct {
		name string
		cfg  *Config
		want string
	}{
		{"unknown cluster", simple([]Route{{Clusters: to("missing")}}), `no cluster "missing"`},
		{"bad regex", simple([]Route{{Match: RouteMatch{Path: PathMatch{Kind: PathRegex, Value: "(("}}, DirectResponse: &DirectResponse{Status: 200}}}), "path.value"},
		{"two actions", simple([]Route{{Clusters: to("c"), DirectResponse: &DirectResponse{Status: 200}}}, Cluster{Name: "c"}), "exactly one"},
		{"bad endpoint", simple(nil, Cluster{Name: "c", Endpoints: eps("nope")}), "endpoints[0].address"},
		{"duplicate domain", &Config{RouteTables: []RouteTable{{Name: "t", VirtualHosts: []VirtualHost{
			{Name: "a", Domains: []string{"x.com"}}, {Name: "b", Domains: []string{"X.com"}}}}}}, `already served by virtual host "a"`},
		{"bad certificate", &Config{Certificates: []Certificate{{Name: "c", CertPEM: []byte("x"), KeyPEM: []byte("y")}},
			RouteTables: []RouteTable{{Name: "t"}},
			Listeners:   []Listener{{Name: "s", Address: "127.0.0.1:0", RouteTable: "t", TLS: &ListenerTLS{Certificates: []string{"c"}}}}}, `certificate "c"`},
		{"unknown route table", &Config{Listeners: []Listener{{Name: "l", Address: "127.0.0.1:0", RouteTable: "none"}}}, "no route table"},
		{"header value with newline", simple([]Route{{DirectResponse: &DirectResponse{Status: 200},
			ResponseHeaders: HeaderOps{Set: []Header{{Name: "x", Value: "a\r\nb"}}}}}), "line break"},
	}
	for _, tc := range bad {
		err := p.Update(tc.cfg)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Update = %v, want ErrInvalid mentioning %q", tc.name, err, tc.want)
		}
	}
	if v := p.Config().Version; v != "v1" {
		t.Errorf("version after rejected updates = %q, want v1", v)
	}
	if _, _, body := get(t, nil, "GET", base+"/", nil, ""); body != "b" {
		t.Errorf("after rejected updates got %q, want b", body)
	}
}

func TestUpdateMovesListeners(t *testing.T) {
	bk := newBackend(t, "b", nil)
	cfg := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	p, base := start(t, cfg)

	// A second listener comes; the first stays on its port.
	cfg2 := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	cfg2.Version = "v2"
	cfg2.Listeners = append(cfg2.Listeners, Listener{Name: "second", Address: "127.0.0.1:0", RouteTable: "rt"})
	if err := p.Update(cfg2); err != nil {
		t.Fatal(err)
	}
	if got := "http://" + p.Addr("main").String(); got != base {
		t.Errorf("main moved from %s to %s", base, got)
	}
	second := "http://" + p.Addr("second").String()
	for _, u := range []string{base, second} {
		if _, _, body := get(t, nil, "GET", u+"/", nil, ""); body != "b" {
			t.Errorf("%s: %q", u, body)
		}
	}

	// The first goes away.
	cfg3 := simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	cfg3.Version = "v3"
	cfg3.Listeners = cfg2.Listeners[1:]
	if err := p.Update(cfg3); err != nil {
		t.Fatal(err)
	}
	if p.Addr("main") != nil {
		t.Error("main still served")
	}
	testEventually(t, "main's port refuses", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	// A listener that cannot bind rejects the whole update.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg4 := simple(nil)
	cfg4.Listeners[0].Address = taken.Addr().String()
	if err := p.Update(cfg4); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("update onto a taken port: %v, want ErrUnavailable", err)
	}
	if p.Config().Version != "v3" {
		t.Errorf("version %q after failed bind, want v3", p.Config().Version)
	}
}

func testEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestExtraMiddlewareSeesTheRoute(t *testing.T) {
	bk := newBackend(t, "b", nil)
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := Info(w)
			if info.Route == "admin" {
				info.Flags |= FlagUnauthorized
				http.Error(w, "RBAC: access denied", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	log := &logBuffer{}
	_, base := start(t, simple([]Route{
		{Name: "admin", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/admin"}}, Clusters: to("c")},
		{Name: "rest", Clusters: to("c")},
	}, Cluster{Name: "c", Endpoints: eps(bk.addr())}), func(o *Options) {
		o.Middleware = []Middleware{deny}
		o.AccessLog = NewTextAccessLog(log)
	})
	if code, _, _ := get(t, nil, "GET", base+"/admin", nil, ""); code != 403 {
		t.Errorf("/admin: %d, want 403", code)
	}
	if code, _, _ := get(t, nil, "GET", base+"/", nil, ""); code != 200 {
		t.Errorf("/: %d, want 200", code)
	}
	if !strings.Contains(log.String(), " 403 UAEX ") {
		t.Errorf("access log lacks 403 UAEX:\n%s", log.String())
	}
}

func TestConnectIsRefused(t *testing.T) {
	bk := newBackend(t, "b", nil)
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(bk.addr())}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: %d, want 405", res.StatusCode)
	}
	if _, hits := bk.seen(); hits != 0 {
		t.Errorf("upstream saw %d requests", hits)
	}
}

func TestRewrites(t *testing.T) {
	bk := newBackend(t, "b", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.EscapedPath()) })
	cfg := simple([]Route{
		{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/ui/"}}, Rewrite: &Rewrite{Prefix: "/"}, Clusters: to("c")},
		{Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/api/v1"}}, Rewrite: &Rewrite{Prefix: "/v2"}, Clusters: to("c")},
		{Match: RouteMatch{Path: PathMatch{Kind: PathExact, Value: "/old"}}, Rewrite: &Rewrite{Prefix: "/new/place"}, Clusters: to("c")},
		{Match: RouteMatch{Path: PathMatch{Kind: PathRegex, Value: "/users/[0-9]+/.*"}},
			Rewrite: &Rewrite{Regex: "^/users/([0-9]+)/(.*)$", Substitution: "/u/$2/$1"}, Clusters: to("c")},
		{Clusters: to("c")},
	}, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	_, base := start(t, cfg)
	for in, want := range map[string]string{
		"/ui":              "/",
		"/ui/a/b":          "/a/b",
		"/api/v1/things":   "/v2/things",
		"/api/v1x":         "/v2x",
		"/old":             "/new/place",
		"/users/42/photos": "/u/photos/42",
		"/keep/a%2Fb":      "/keep/a%2Fb",
	} {
		if _, _, got := get(t, nil, "GET", base+in, nil, ""); got != want {
			t.Errorf("%s forwarded as %q, want %q", in, got, want)
		}
	}
}
