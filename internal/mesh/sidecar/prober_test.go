package sidecar

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// appServer is an app on 127.0.0.1 that answers /status/<code> with
// that code and records the last request.
type appServer struct {
	mu   sync.Mutex
	last *http.Request
	srv  *httptest.Server
}

func newApp(t *testing.T, tlsOn bool) *appServer {
	a := &appServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last = r.Clone(r.Context())
		a.mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		case "/redirect":
			http.Redirect(w, r, "http://198.51.100.1/elsewhere", http.StatusFound)
			return
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	if tlsOn {
		a.srv = httptest.NewTLSServer(h)
	} else {
		a.srv = httptest.NewServer(h)
	}
	t.Cleanup(a.srv.Close)
	return a
}

func (a *appServer) port(t *testing.T) int32 {
	u, err := url.Parse(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return int32(p)
}

func (a *appServer) request() *http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := int32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return p
}

func TestAppProber(t *testing.T) {
	app := newApp(t, false)
	secure := newApp(t, true)
	port, sport, closed := app.port(t), secure.port(t), closedPort(t)
	httpGet := func(port int32, path string) meshconfig.AppProber {
		return meshconfig.AppProber{HTTPGet: &meshconfig.HTTPGetProbe{Path: path, Port: port, Scheme: "HTTP"}, TimeoutSeconds: 1}
	}
	probers := meshconfig.AppProbers{
		"/app-health/web/readyz": httpGet(port, "/ready"),
		"/app-health/web/livez":  httpGet(port, "/fail"),
		"/app-health/web/startupz": {HTTPGet: &meshconfig.HTTPGetProbe{Path: "/started", Port: port,
			Host: "web.example", HTTPHeaders: []meshconfig.HTTPHeader{{Name: "X-Probe", Value: "1"}}}},
		"/app-health/redirect/readyz": httpGet(port, "/redirect"),
		"/app-health/slow/readyz":     httpGet(port, "/slow"),
		"/app-health/down/readyz":     httpGet(closed, "/"),
		"/app-health/tls/readyz":      {HTTPGet: &meshconfig.HTTPGetProbe{Path: "/", Port: sport, Scheme: "HTTPS"}},
		"/app-health/db/livez":        {TCPSocket: &meshconfig.TCPSocketProbe{Port: port}},
		"/app-health/db/readyz":       {TCPSocket: &meshconfig.TCPSocketProbe{Port: closed}},
	}
	mux := New(Options{AppProbers: probers}).statsMux()
	cases := []struct {
		name, path string
		want       int
		check      func(t *testing.T, r *http.Request)
	}{
		{name: "http ok", path: "/app-health/web/readyz", want: 200, check: func(t *testing.T, r *http.Request) {
			if r.URL.Path != "/ready" || r.Header.Get("User-Agent") != "kube-probe/1.32" {
				t.Errorf("app got %s with User-Agent %q", r.URL.Path, r.Header.Get("User-Agent"))
			}
		}},
		{name: "app's failure code passed on", path: "/app-health/web/livez", want: 500},
		{name: "host and headers", path: "/app-health/web/startupz", want: 200, check: func(t *testing.T, r *http.Request) {
			if r.Host != "web.example" || r.Header.Get("X-Probe") != "1" || r.URL.Path != "/started" {
				t.Errorf("app got host %q X-Probe %q path %s", r.Host, r.Header.Get("X-Probe"), r.URL.Path)
			}
		}},
		{name: "redirect not followed", path: "/app-health/redirect/readyz", want: 302},
		{name: "timeout", path: "/app-health/slow/readyz", want: 503},
		{name: "app down", path: "/app-health/down/readyz", want: 503},
		{name: "https not verified", path: "/app-health/tls/readyz", want: 200},
		{name: "tcp open", path: "/app-health/db/livez", want: 200},
		{name: "tcp refused", path: "/app-health/db/readyz", want: 503},
		{name: "no such probe", path: "/app-health/nope/readyz", want: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://10.244.0.5:15020"+tc.path, nil)
			req.Header.Set("User-Agent", "kube-probe/1.32")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("code %d, want %d (body %q)", rec.Code, tc.want, rec.Body.String())
			}
			if rec.Header().Get("Location") != "" {
				t.Errorf("Location %q passed on: the kubelet would follow it", rec.Header().Get("Location"))
			}
			if tc.check != nil {
				tc.check(t, app.request())
			}
		})
	}
}

func TestParseAppProbers(t *testing.T) {
	cases := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{name: "empty", in: ""},
		{name: "istio's shape", in: `{"/app-health/web/readyz":{"httpGet":{"path":"/r","port":8080,"scheme":"HTTP"},"timeoutSeconds":3},` +
			`"/app-health/web/livez":{"tcpSocket":{"port":8080}}}`, want: 2},
		{name: "not json", in: `{`, wantErr: true},
		{name: "named port left", in: `{"/app-health/web/readyz":{"httpGet":{"port":"http"}}}`, wantErr: true},
		{name: "other path", in: `{"/healthz":{"tcpSocket":{"port":1}}}`, wantErr: true},
		{name: "no action", in: `{"/app-health/web/readyz":{"timeoutSeconds":1}}`, wantErr: true},
		{name: "two actions", in: `{"/app-health/web/readyz":{"tcpSocket":{"port":1},"httpGet":{"port":1}}}`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAppProbers(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if len(got) != tc.want {
				t.Errorf("%d probers, want %d", len(got), tc.want)
			}
		})
	}
}
