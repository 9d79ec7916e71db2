package dockerapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

const (
	// APIVersion is the newest Engine API version served: the one the moby
	// api module (v1.56.1) describes.
	APIVersion = "1.56"
	// MinAPIVersion is the oldest Engine API version accepted.
	MinAPIVersion = "1.24"
)

// Options describe the engine to clients (/version, /info, /_ping) and
// tune the server. The zero value is usable.
type Options struct {
	// Logger receives one debug record per request and the server's own
	// failures (default: discard).
	Logger *slog.Logger
	// Version is the engine's version (default "0.0.0-dev").
	Version   string
	GitCommit string
	BuildTime string
	// OSType and Arch default to the Go runtime's GOOS and GOARCH.
	OSType, Arch  string
	KernelVersion string
	Experimental  bool
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends (default 10s). Streams (events, logs -f,
	// attach, exec, stats, wait, pull, push, build) end at once.
	ShutdownTimeout time.Duration
}

// Server is the Docker Engine API over a Backend.
type Server struct {
	b       Backend
	opts    Options
	log     *slog.Logger
	routes  []route
	handler http.Handler

	// statsInterval is the period of streamed stats (one sample a
	// second, like dockerd); tests shorten it.
	statsInterval time.Duration
	// readyGrace is how long attach and wait wait for the Backend's
	// ready signal before answering anyway: a Backend that never
	// signals would otherwise deadlock `docker run`, which waits for both
	// answers before it starts the container.
	readyGrace time.Duration
}

// New returns a server for b. It does no I/O.
func New(b Backend, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "0.0.0-dev"
	}
	if opts.OSType == "" {
		opts.OSType = runtime.GOOS
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{
		b:             b,
		opts:          opts,
		log:           opts.Logger.With("component", "dockerapi"),
		statsInterval: time.Second,
		readyGrace:    2 * time.Second,
	}
	s.routes = s.routeTable()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// Handler returns the API as an http.Handler. Streams it serves end when
// their request's context ends (for a handler run by Serve, also when
// Serve's context ends).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers API requests on l until ctx ends, then shuts down
// gracefully: it stops accepting, ends streams, waits up to
// Options.ShutdownTimeout for other requests, and closes hijacked
// (attach/exec) connections. It closes l. It returns nil after a shutdown
// caused by ctx, or the error that stopped it serving.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	st := newServeState()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), serveStateKey{}, st)
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	st.drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	st.closeHijacked(sctx)
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

// serveState is what one Serve call shares with the requests it serves:
// the signal that ends streams, and the hijacked connections to close.
type serveState struct {
	draining chan struct{}
	once     sync.Once

	mu       sync.Mutex
	hijacked map[net.Conn]struct{}
	wg       sync.WaitGroup
}

type serveStateKey struct{}

func newServeState() *serveState {
	return &serveState{draining: make(chan struct{}), hijacked: map[net.Conn]struct{}{}}
}

func (st *serveState) drain() { st.once.Do(func() { close(st.draining) }) }

// track registers a hijacked connection; the returned func unregisters it
// and must be called once its handler is done with it.
func (st *serveState) track(c net.Conn) (untrack func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.hijacked[c] = struct{}{}
	st.wg.Add(1)
	return sync.OnceFunc(func() {
		st.mu.Lock()
		delete(st.hijacked, c)
		st.mu.Unlock()
		st.wg.Done()
	})
}

// closeHijacked closes every hijacked connection and waits (until ctx
// ends) for their handlers to return.
func (st *serveState) closeHijacked(ctx context.Context) {
	st.mu.Lock()
	for c := range st.hijacked {
		_ = c.Close()
	}
	st.mu.Unlock()
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// streamContext returns the context a streaming handler runs in: r's,
// also cancelled when the Serve that accepted r shuts down.
func streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	st, _ := r.Context().Value(serveStateKey{}).(*serveState)
	if st == nil {
		return ctx, cancel
	}
	go func() {
		select {
		case <-st.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
