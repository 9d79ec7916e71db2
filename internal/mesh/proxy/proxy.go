package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

// Options configure a Proxy.
type Options struct {
	Logger *slog.Logger
	// AccessLog receives every request when set.
	AccessLog AccessLogger
	// TCP, when set, is told about every connection a capture listener
	// forwards whole, and counts its bytes (capture_tcp.go).
	TCP func(*TCPConn) TCPStream
	// AuthorizeConn, when set, decides every inbound connection a
	// capture listener forwards whole (a TCP chain's, or an unmatched
	// one passed through), once, after any mesh mTLS handshake and
	// before the upstream is dialed; UpstreamHost is still empty. An
	// error closes the connection (logged at info). The mesh's TCP
	// authorization (Istio's RBAC network filter).
	AuthorizeConn func(*TCPConn) error
	// Middleware are extra stages between routing and forwarding (the
	// mesh's authorization, fault injection, ...), outermost first.
	Middleware []Middleware
	// ShutdownTimeout bounds draining connections when a listener goes
	// away or Run ends (default 5s).
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers (default 30s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client connections (default 120s).
	IdleTimeout time.Duration
	// Random returns a number in [0, n) for the per-request draws of
	// fault injection and mirroring (tests make them deterministic);
	// nil means math/rand/v2.
	Random func(n uint32) uint32
}

// Proxy serves a Config. Its methods are safe for concurrent use.
type Proxy struct {
	opts Options
	log  *slog.Logger

	snap    atomic.Pointer[snapshot]
	certs   certCache
	tunnels tunnels
	ready   chan struct{}

	mu        sync.Mutex // serialises Update, SetEndpoints and Run's start and stop
	running   bool
	readyOnce sync.Once
	servers   map[string]*server // by listener name, while running
	wg        sync.WaitGroup     // Serve goroutines and draining servers

	// passthrough pools connections to original destinations
	// (capture_passthrough.go).
	passthrough passthroughTransport
}

// server is one listener's socket and HTTP server.
type server struct {
	key      string
	address  string // as configured
	ln       net.Listener
	srv      *http.Server
	draining atomic.Bool
	// capture serves a capture listener's connections (srv then serves
	// its HTTP chains).
	capture *captureServer
}

// New returns a Proxy with an empty configuration. It does no I/O.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	p := &Proxy{opts: opts, log: opts.Logger.With("component", "proxy"),
		ready: make(chan struct{}), servers: map[string]*server{}}
	p.snap.Store(&snapshot{cfg: &Config{}, listeners: map[string]*listenerSpec{}, clusters: map[string]*cluster{}})
	return p
}

// Config returns the configuration in effect (endpoint changes made with
// SetEndpoints are not reflected in it).
func (p *Proxy) Config() *Config { return p.snap.Load().cfg }

// Ready is closed once Run has bound its listeners.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Addr is the bound address of the named listener while Run serves it
// (useful with port 0), or nil.
func (p *Proxy) Addr(listener string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.servers[listener]; s != nil {
		return s.ln.Addr()
	}
	return nil
}

// Update validates cfg and, if it is good, makes it the configuration
// in effect: new requests use it at once, listeners are added, moved or
// removed (removed ones drain), and clusters whose settings did not change
// keep their connection pools. A bad cfg (errdefs.ErrInvalid) or one whose
// new listeners cannot bind (errdefs.ErrUnavailable) is rejected and the
// current configuration stays. cfg must not be changed afterwards.
func (p *Proxy) Update(cfg *Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.snap.Load()
	snap, pending, err := compile(cfg, prev, p.certs.get)
	if err != nil {
		return err
	}
	var bound map[string]net.Listener
	if p.running {
		if bound, err = p.bindNew(snap); err != nil {
			return err
		}
	}
	for cl, eps := range pending {
		cl.setEndpoints(eps)
	}
	snap.publishClusters()
	p.snap.Store(snap)
	p.certs.prune()
	for name, cl := range prev.clusters {
		if snap.clusters[name] != cl {
			cl.close()
		}
	}
	if p.running {
		p.reconcileServers(snap, bound)
	}
	p.log.Debug("configuration applied", "version", cfg.Version, "listeners", len(cfg.Listeners),
		"clusters", len(cfg.Clusters))
	return nil
}

// SetEndpoints replaces one cluster's endpoints without touching routes
// (a later Update sets them from its Config again).
func (p *Proxy) SetEndpoints(cluster string, eps []Endpoint) error {
	if err := validateEndpoints(eps); err != nil {
		return fmt.Errorf("cluster %q: %w: %w", cluster, errdefs.ErrInvalid, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cl := p.snap.Load().clusters[cluster]
	if cl == nil {
		return fmt.Errorf("cluster %q: %w", cluster, errdefs.ErrNotFound)
	}
	cl.setEndpoints(eps)
	return nil
}

// Run binds the configuration's listeners and serves until ctx ends, then
// drains connections (up to ShutdownTimeout) and returns nil. Listeners
// that cannot bind at the start make it return an error.
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("proxy: already running")
	}
	snap := p.snap.Load()
	bound, err := p.bindNew(snap)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.tunnels.open()
	p.running = true
	p.reconcileServers(snap, bound)
	p.readyOnce.Do(func() { close(p.ready) })
	p.mu.Unlock()
	p.log.Info("serving", "listeners", len(bound), "version", snap.cfg.Version)

	<-ctx.Done()

	p.mu.Lock()
	p.running = false
	servers := p.servers
	p.servers = map[string]*server{}
	for _, s := range servers {
		p.drain(s)
	}
	p.mu.Unlock()
	p.tunnels.closeAll()
	p.wg.Wait()
	for _, cl := range p.snap.Load().clusters {
		cl.close()
	}
	return nil
}

// bindNew opens sockets for listeners of snap that have none on their
// address yet. On failure it closes what it opened.
func (p *Proxy) bindNew(snap *snapshot) (map[string]net.Listener, error) {
	bound := map[string]net.Listener{}
	for name, l := range snap.listeners {
		if s := p.servers[name]; s != nil && s.key == l.restartKey() {
			continue
		}
		if s := p.servers[name]; s != nil && s.address == l.address {
			continue // same socket address, new settings: rebound after the old one closes
		}
		ln, err := net.Listen("tcp", l.address)
		if err != nil {
			for _, b := range bound {
				_ = b.Close()
			}
			return nil, fmt.Errorf("listener %q: %w: %w", name, errdefs.ErrUnavailable, err)
		}
		bound[name] = ln
	}
	return bound, nil
}

// reconcileServers stops servers that left or changed and starts those
// that are new, on the sockets bindNew opened.
func (p *Proxy) reconcileServers(snap *snapshot, bound map[string]net.Listener) {
	for name, s := range p.servers {
		if l := snap.listeners[name]; l == nil || l.restartKey() != s.key {
			delete(p.servers, name)
			p.drain(s)
		}
	}
	for name, l := range snap.listeners {
		if p.servers[name] != nil {
			continue
		}
		ln := bound[name]
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", l.address); err != nil {
				p.log.Error("listener not served", "listener", name, "address", l.address, "err", err)
				continue
			}
		}
		p.serve(l, ln)
	}
}

func (p *Proxy) serve(l *listenerSpec, ln net.Listener) {
	if l.capture != nil {
		p.serveCapture(l, ln)
		return
	}
	srv := &http.Server{
		Handler:           p.Handler(l.name),
		ReadHeaderTimeout: p.opts.ReadHeaderTimeout,
		IdleTimeout:       p.opts.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if l.tls {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: p.certificateFor(l.name)}
	}
	if l.h2c {
		protos.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protos
	s := &server{key: l.restartKey(), address: l.address, ln: ln, srv: srv}
	p.servers[l.name] = s
	p.log.Info("listening", "listener", l.name, "address", ln.Addr().String(), "tls", l.tls)
	p.wg.Go(func() {
		var err error
		if l.tls {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !s.draining.Load() {
			p.log.Error("listener failed", "listener", l.name, "err", err)
		}
	})
}

// drain closes s's socket at once and lets its connections finish in the
// background, up to ShutdownTimeout.
func (p *Proxy) drain(s *server) {
	s.draining.Store(true)
	_ = s.ln.Close()
	p.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if s.capture != nil {
			s.capture.drain(ctx)
		}
	})
}

func (p *Proxy) certificateFor(listener string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if l := p.snap.Load().listeners[listener]; l != nil && l.certs != nil {
			if c := l.certs.lookup(hello.ServerName); c != nil {
				return c, nil
			}
		}
		return nil, fmt.Errorf("listener %q: no certificate for %q", listener, hello.ServerName)
	}
}

// Handler is the named listener's handler chain, for serving the proxy's
// routes on connections accepted elsewhere.
func (p *Proxy) Handler(listener string) http.Handler {
	stages := []Middleware{AccessLog(p.opts.AccessLog), RequestID(), Forwarded(), Router()}
	stages = append(stages, p.opts.Middleware...)
	stages = append(stages, p.passthroughStage) // capture_passthrough.go
	return &root{p: p, name: listener, chain: Chain(p.Forward(), stages...)}
}
