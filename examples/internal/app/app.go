// Package app is what every example application shares: structured logs,
// graceful shutdown, liveness/readiness endpoints, trace-header
// propagation and a JSON reply helper. Only the programs under examples/
// import it; they stay small, static and FROM-scratch friendly (standard
// library only).
package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Env returns the environment variable key, or def when it is unset or empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Logger is the app's JSON logger on stdout, tagged with the app's name,
// version and (in Kubernetes) pod name.
func Logger(name, version string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, nil)).With(
		"app", name, "version", version, "pod", Env("POD_NAME", Hostname()))
}

// Hostname is the host (in a pod: the pod's) name, or "unknown".
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// Server runs an HTTP handler with the shared middleware until SIGTERM or
// SIGINT, then drains: readiness turns false first so endpoints are
// removed, in-flight requests finish within the grace period.
type Server struct {
	Addr    string
	Handler http.Handler
	Log     *slog.Logger
	// Drain is how long readiness stays false before the listener closes
	// (lets Services stop sending new requests); default 2s.
	Drain time.Duration
	ready atomic.Bool
}

// Ready reports readiness (false while draining).
func (s *Server) Ready() bool { return s.ready.Load() }

// Run serves until a termination signal or ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if s.Drain == 0 {
		s.Drain = 2 * time.Second
	}
	srv := &http.Server{Addr: s.Addr, Handler: logRequests(s.Log, s.Handler), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	s.ready.Store(true)
	s.Log.Info("listening", "addr", s.Addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.Log.Info("draining", "for", s.Drain.String())
	time.Sleep(s.Drain)
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.Log.Info("stopped")
	return nil
}

// Probe answers 200 while ok() holds and 503 otherwise.
func Probe(ok func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ok() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}
}

// Reply is the JSON envelope of the product services.
type Reply struct {
	Version      string `json:"version"`
	ResponseDate string `json:"responsedate"`
	Response     any    `json:"response"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteReply writes the product services' envelope.
func WriteReply(w http.ResponseWriter, version string, response any) {
	WriteJSON(w, http.StatusOK, Reply{Version: version, ResponseDate: time.Now().UTC().Format(time.RFC3339), Response: response})
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func logRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", strconv.Itoa(sw.code),
			"ms", time.Since(start).Milliseconds(), "request_id", r.Header.Get("X-Request-Id"))
	})
}
