package dockerapi_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
)

// testServer is a Server on a unix socket in a temp dir, with clients.
type testServer struct {
	*dockerapi.Server
	Backend *dockerapitest.Backend
	Socket  string
	// Client negotiates the API version (the default).
	Client *client.Client
	// HTTP talks to the socket directly, for raw requests.
	HTTP *http.Client
}

// startServer serves b (a new fake if nil) until the test ends; the
// cleanup waits for Serve to return.
func startServer(t *testing.T, b dockerapi.Backend) *testServer {
	t.Helper()
	fake, _ := b.(*dockerapitest.Backend)
	if b == nil {
		fake = dockerapitest.New()
		b = fake
	}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := dockerapi.New(b, dockerapi.Options{Logger: testLogger(t), Version: "0.1.0-test", KernelVersion: "6.1.0-test"})
	srv.SetStatsInterval(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	cli := newClient(t, sock, client.WithAPIVersionNegotiation())
	httpc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(httpc.CloseIdleConnections)
	return &testServer{Server: srv, Backend: fake, Socket: sock, Client: cli, HTTP: httpc}
}

func newClient(t *testing.T, sock string, opts ...client.Opt) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Opt{client.WithHost("unix://" + sock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// do sends a raw request; body may be nil. An error body comes back as
// its message.
func (ts *testServer) do(t *testing.T, method, path string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Message string }
	if resp.StatusCode >= 400 && json.Unmarshal(b, &e) == nil && e.Message != "" {
		return resp, e.Message
	}
	return resp, string(b)
}

// testLogger logs through t until the test's cleanups are done.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func newJSONDecoder(r io.Reader) *json.Decoder { return json.NewDecoder(r) }

func contextWithCancel(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }
