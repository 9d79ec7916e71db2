package authz

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// capture is the test's stand-in for a capture listener: it marks each
// request with the direction and peer identity the test asks for in
// headers.
func capture() proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if info := proxy.Info(w); info != nil {
				info.Direction = proxy.Direction(r.Header.Get("x-test-direction"))
				info.PeerPrincipal = r.Header.Get("x-test-principal")
				info.OriginalDst = "10.244.0.9:8000"
			}
			r.Header.Del("x-test-direction")
			r.Header.Del("x-test-principal")
			next.ServeHTTP(w, r)
		})
	}
}

type flagLog struct {
	mu    sync.Mutex
	flags map[string]proxy.Flags // by request path
}

func (l *flagLog) Log(r *http.Request, info *proxy.RequestInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flags[r.URL.Path] = info.Flags
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMiddlewareThroughProxy(t *testing.T) {
	var upstreamAuth atomic.Value
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamAuth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("x-jwt-payload"))
		_, _ = io.WriteString(w, "hello from upstream")
	}))
	t.Cleanup(upstream.Close)

	key := newRSAKey(t, "k")
	logs := &syncBuffer{}
	eng, err := New(Config{
		Policies: []Policy{
			{Namespace: "foo", Name: "deny-admin", Action: Deny, Rules: []Rule{{To: []Operation{{Paths: []string{"/admin*"}}}}}},
			{Namespace: "foo", Name: "allow-sleep", Rules: []Rule{
				{From: []Source{{Principals: []string{sleepSA}}}},
				{From: []Source{{RequestPrincipals: []string{"*"}}}, To: []Operation{{Paths: []string{"/jwt"}}}},
			}},
		},
		JWT: []JWTRule{{Issuer: testIssuer, JWKS: jwks(t, key), OutputPayloadToHeader: "x-jwt-payload"}},
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[Engine]
	current.Store(eng)

	fl := &flagLog{flags: map[string]proxy.Flags{}}
	p := proxy.New(proxy.Options{
		Logger: testLogger(t), AccessLog: fl, ShutdownTimeout: time.Second,
		Middleware: []proxy.Middleware{capture(), Middleware(current.Load)},
	})
	err = p.Update(&proxy.Config{
		Version:   "v1",
		Listeners: []proxy.Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
		RouteTables: []proxy.RouteTable{{Name: "rt", VirtualHosts: []proxy.VirtualHost{{Name: "all", Domains: []string{"*"},
			Routes: []proxy.Route{{Clusters: []proxy.WeightedCluster{{Cluster: "app"}}}}}}}},
		Clusters: []proxy.Cluster{{Name: "app", Endpoints: []proxy.Endpoint{{Address: strings.TrimPrefix(upstream.URL, "http://")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	base := "http://" + p.Addr("main").String()

	validToken := token(t, key, stdClaims())
	tests := []struct {
		name      string
		path      string
		direction proxy.Direction
		principal string
		auth      string
		status    int
		body      string
		log       string // in the engine's log
	}{
		{"outbound is not checked", "/admin/x", proxy.Outbound, "", "", 200, "hello from upstream", ""},
		{"inbound allowed principal", "/ok", proxy.Inbound, sleepSA, "", 200, "hello from upstream", ""},
		{"inbound no identity denied", "/nope", proxy.Inbound, "", "", 403, "RBAC: access denied", "no ALLOW policy matched"},
		{"inbound deny policy", "/admin/users", proxy.Inbound, sleepSA, "", 403, "RBAC: access denied", "policy=foo/deny-admin rule=0"},
		{"dot segments do not dodge the deny", "/public/../admin/users", proxy.Inbound, sleepSA, "", 403, "RBAC: access denied", "policy=foo/deny-admin"},
		{"valid JWT allowed", "/jwt", proxy.Inbound, "", "Bearer " + validToken, 200, "hello from upstream", ""},
		{"no JWT on a requestPrincipals path", "/jwt", proxy.Inbound, "", "", 403, "RBAC: access denied", "no ALLOW policy matched"},
		{"invalid JWT is 401", "/jwt-bad", proxy.Inbound, sleepSA, "Bearer " + token(t, newRSAKey(t, "k"), stdClaims()), 401, "Jwt verification fails", "request authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", base+tt.path, nil)
			r.Header.Set("x-test-direction", string(tt.direction))
			if tt.principal != "" {
				r.Header.Set("x-test-principal", tt.principal)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			res, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || string(b) != tt.body {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, b, tt.status, tt.body)
			}
			if tt.status == 401 && !strings.Contains(res.Header.Get("Www-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q", res.Header.Get("Www-Authenticate"))
			}
			if tt.log != "" && !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs.String())
			}
		})
	}
	if got := upstreamAuth.Load().(string); !strings.HasPrefix(got, "|ey") {
		t.Errorf("upstream saw Authorization|payload = %q; want the token removed and the payload forwarded", got)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.flags["/nope"].Has(proxy.FlagUnauthorized) || fl.flags["/ok"].Has(proxy.FlagUnauthorized) {
		t.Errorf("flags: %v", fl.flags)
	}
}

func TestMiddlewareNilEngineAllows(t *testing.T) {
	h := Middleware(func() *Engine { return nil })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 204 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestRequestForDecodesPath(t *testing.T) {
	for in, want := range map[string]string{
		"/admin%2Fsecret":       "/admin/secret",
		"/%61dmin/x":            "/admin/x",
		"/a/%2e%2E/admin/x?q=1": "/admin/x",
		"/x%2541":               "/x%41", // decoded once, not twice
	} {
		r := httptest.NewRequest("GET", "http://h"+in, nil)
		if got := RequestFor(r, nil).Path; got != want {
			t.Errorf("%s: path %q, want %q", in, got, want)
		}
	}
}
