// Package testenv starts a real Skiff control plane in-process for tests:
// embedded etcd in a temp dir, the API server on a loopback port, and the
// controllers. Tests talk to it with client-go or kubectl like any user.
package testenv

import (
	"context"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/daemon"
)

// Env is a running control plane.
type Env struct {
	// DataDir is the server's data directory.
	DataDir string
	// Kubeconfig is the admin kubeconfig's path.
	Kubeconfig string
	// Config is the admin client config.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
}

// Start runs a server for the test and stops it at cleanup. opts may
// adjust the server options (e.g. an external etcd).
func Start(t testing.TB, opts ...func(*daemon.ServerOptions)) *Env {
	t.Helper()
	o := daemon.ServerOptions{
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := daemon.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(30 * time.Second):
			var stacks strings.Builder
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("server did not stop in 30s; goroutines:\n%s", stacks.String())
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server failed to start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready after 60s")
	}
	env := &Env{DataDir: o.DataDir, Kubeconfig: daemon.AdminKubeconfigPath(o.DataDir)}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	env.Config = cfg
	if env.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return env
}

// testWriter sends server logs to the test's log, so they show only for
// failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// WithoutControllers starts the API without control loops, for tests that
// run the controller under test themselves.
func WithoutControllers(o *daemon.ServerOptions) { o.DisableControllers = true }

// Run runs a component's Run (fn) in the background for the test. The
// returned stop cancels it and waits up to 10 s for it to return; it also
// runs at cleanup.
func Run(t testing.TB, name string, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop in 10s", name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Eventually polls cond every 20 ms for up to 30 s and fails the test,
// naming what it waited for and cond's last error, if cond never holds.
func Eventually(t testing.TB, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting until %s: %v (last error: %v)", what, err, last)
	}
}

// Logger is a debug-level logger writing to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
