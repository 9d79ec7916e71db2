package sidecar

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// fakeNode is the node's side of the socket: it serves the document set
// with publish (long poll) and records the sidecar's status reports.
type fakeNode struct {
	mu       sync.Mutex
	doc      []byte
	version  string
	changed  chan struct{}
	statuses []meshconfig.Status
	polls    int
}

func newFakeNode() *fakeNode { return &fakeNode{changed: make(chan struct{})} }

func (n *fakeNode) publish(t *testing.T, doc *meshconfig.Sidecar) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.doc, n.version = b, doc.Version
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

func (n *fakeNode) serve(t *testing.T, socket string) {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+meshconfig.ConfigPath, func(w http.ResponseWriter, r *http.Request) {
		have := r.URL.Query().Get("version")
		deadline := time.After(500 * time.Millisecond) // the real node waits ~30s
		for {
			n.mu.Lock()
			n.polls++
			doc, version, changed := n.doc, n.version, n.changed
			n.mu.Unlock()
			if doc != nil && version != have {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(doc)
				return
			}
			select {
			case <-changed:
			case <-deadline:
				w.WriteHeader(http.StatusNotModified)
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("POST "+meshconfig.StatusPath, func(w http.ResponseWriter, r *http.Request) {
		var st meshconfig.Status
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.mu.Lock()
		n.statuses = append(n.statuses, st)
		n.mu.Unlock()
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func (n *fakeNode) status(t *testing.T, version string) meshconfig.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		for _, st := range n.statuses {
			if st.Version == version {
				n.mu.Unlock()
				return st
			}
		}
		n.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no status reported for version %q", version)
	return meshconfig.Status{}
}

// document is a sidecar document with one plain listener "main" that
// answers body on every request.
func document(t *testing.T, version, body string) *meshconfig.Sidecar {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(app.Close)
	return &meshconfig.Sidecar{
		Version:  version,
		Workload: meshconfig.Workload{Pod: "web-1", Namespace: "default", Name: "web", Principal: "cluster.local/ns/default/sa/web"},
		Proxy: proxy.Config{
			Listeners: []proxy.Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
			RouteTables: []proxy.RouteTable{{Name: "rt", VirtualHosts: []proxy.VirtualHost{{Name: "all", Domains: []string{"*"},
				Routes: []proxy.Route{{Clusters: []proxy.WeightedCluster{{Cluster: "app"}}}}}}}},
			Clusters: []proxy.Cluster{{Name: "app", Endpoints: []proxy.Endpoint{{Address: strings.TrimPrefix(app.URL, "http://")}}}},
		},
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func TestSidecar(t *testing.T) {
	socket := filepath.Join(t.TempDir(), meshconfig.SocketName)
	node := newFakeNode()
	workloads := make(chan string, 10)
	logs := make(chan string, 100)
	sc := New(Options{
		Logger: testLogger(t), Socket: socket,
		HealthAddress: "127.0.0.1:0", StatsAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0",
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "istio_requests_total 0\n")
		}),
		Middleware: func(wl meshconfig.Workload) []proxy.Middleware {
			workloads <- wl.Name
			return []proxy.Middleware{func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Workload", wl.Name)
					next.ServeHTTP(w, r)
				})
			}}
		},
		AccessLog: func(wl meshconfig.Workload) proxy.AccessLogger {
			return logged{name: wl.Name, ch: logs}
		},
		DrainTimeout: time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("sidecar did not stop")
		}
	})

	var health string
	deadline := time.Now().Add(5 * time.Second)
	for sc.Addr(HealthServer) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	health = "http://" + sc.Addr(HealthServer).String() + "/healthz/ready"
	admin := "http://" + sc.Addr(AdminServer).String()

	// The node's socket does not exist yet: not ready, and retrying.
	if code, _, _ := get(t, health); code != http.StatusServiceUnavailable {
		t.Fatalf("ready before any document: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	node.serve(t, socket)
	node.publish(t, document(t, "v1", "one"))
	select {
	case <-sc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after the first document")
	}
	if st := node.status(t, "v1"); st.Error != "" {
		t.Fatalf("v1 rejected: %s", st.Error)
	}
	if code, _, _ := get(t, health); code != http.StatusOK {
		t.Fatalf("health after the first document: %d", code)
	}
	main := "http://" + sc.Proxy().Addr("main").String()
	if code, body, h := get(t, main); code != 200 || body != "one" || h.Get("X-Workload") != "web" {
		t.Fatalf("proxy answered %d %q (workload %q)", code, body, h.Get("X-Workload"))
	}
	select {
	case l := <-logs:
		if l != "web 200" {
			t.Fatalf("access log %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no access log")
	}

	t.Run("rejected document keeps the last good one", func(t *testing.T) {
		bad := document(t, "v2", "two")
		bad.Proxy.Listeners[0].RouteTable = "missing"
		node.publish(t, bad)
		if st := node.status(t, "v2"); !strings.Contains(st.Error, "missing") {
			t.Fatalf("v2 status %+v, want an error naming the route table", st)
		}
		if code, body, _ := get(t, main); code != 200 || body != "one" {
			t.Fatalf("after a rejected document: %d %q", code, body)
		}
		if code, _, _ := get(t, health); code != http.StatusOK {
			t.Fatalf("health after a rejected document: %d", code)
		}
	})

	t.Run("new workload rebuilds telemetry", func(t *testing.T) {
		doc := document(t, "v3", "three")
		doc.Workload.Name = "web-v2"
		node.publish(t, doc)
		if st := node.status(t, "v3"); st.Error != "" {
			t.Fatalf("v3 rejected: %s", st.Error)
		}
		main := "http://" + sc.Proxy().Addr("main").String()
		if code, body, h := get(t, main); code != 200 || body != "three" || h.Get("X-Workload") != "web-v2" {
			t.Fatalf("proxy answered %d %q (workload %q)", code, body, h.Get("X-Workload"))
		}
	})

	t.Run("a document whose listener cannot bind yet is tried again", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		doc := document(t, "v5", "five")
		doc.Proxy.Listeners = append(doc.Proxy.Listeners, proxy.Listener{Name: "held", Address: held.Addr().String(), RouteTable: "rt"})
		node.publish(t, doc)
		if st := node.status(t, "v5"); !strings.Contains(st.Error, "unavailable") {
			t.Fatalf("v5 status %+v, want unavailable", st)
		}
		held.Close()
		deadline := time.Now().Add(10 * time.Second)
		for sc.Proxy().Config().Version != "v5" {
			if time.Now().After(deadline) {
				t.Fatal("v5 was not applied once its port was free")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("config dump redacts keys", func(t *testing.T) {
		doc := document(t, "v4", "four")
		doc.Proxy.Identity = &proxy.Identity{CertPEM: []byte("CERT"), KeyPEM: []byte("SECRET-KEY"), RootsPEM: []byte("ROOTS")}
		doc.Proxy.Certificates = []proxy.Certificate{{Name: "c", CertPEM: []byte("CERT"), KeyPEM: []byte("SECRET-KEY")}}
		// Not a valid identity: rejected, so dump a copy directly too.
		out, err := json.Marshal(redacted(doc))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "U0VDUkVULUtFWQ") { // base64 of SECRET-KEY
			t.Fatalf("key in dump: %s", out)
		}
		if doc.Proxy.Identity.KeyPEM == nil || doc.Proxy.Certificates[0].KeyPEM == nil {
			t.Fatal("redacting changed the applied document")
		}
		code, body, _ := get(t, admin+"/config_dump")
		var dumped meshconfig.Sidecar
		if err := json.Unmarshal([]byte(body), &dumped); code != 200 || err != nil || dumped.Version != "v5" {
			t.Fatalf("config_dump: %d %v %q", code, err, body)
		}
	})

	t.Run("stats", func(t *testing.T) {
		code, body, _ := get(t, "http://"+sc.Addr(StatsServer).String()+"/stats/prometheus")
		if code != 200 || !strings.Contains(body, "istio_requests_total") {
			t.Fatalf("stats: %d %q", code, body)
		}
	})

	t.Run("drain", func(t *testing.T) {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			done <- nil
		case <-time.After(10 * time.Second):
			t.Fatal("sidecar did not stop")
		}
		if _, err := net.DialTimeout("tcp", strings.TrimPrefix(main, "http://"), time.Second); err == nil {
			t.Fatal("the proxy still accepts after Run returned")
		}
	})
}

type logged struct {
	name string
	ch   chan string
}

func (l logged) Log(_ *http.Request, info *proxy.RequestInfo) {
	l.ch <- l.name + " " + strconv.Itoa(info.Status)
}
