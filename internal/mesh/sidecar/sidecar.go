// Package sidecar is the sidecar runtime: what runs inside a pod's
// istio-proxy container (cmd/skiff-proxy). It fetches the pod's
// meshconfig.Sidecar document from the node over the unix socket the
// node agent mounts into the container, applies each document to a
// proxy.Proxy (capture listeners, routes, clusters, identity) and to an
// authorization engine, reports to the node whether it took it, and
// serves the sidecar's own ports: readiness (HealthPort), metrics
// (StatsPort) and the admin's config dump (AdminPort, loopback only).
//
// It must stay free of Kubernetes and Istio API imports, like everything
// the skiff-proxy binary links (cmd/skiff-proxy checks).
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// Options configure a Sidecar.
type Options struct {
	Logger *slog.Logger
	// Socket is the node's unix socket (default
	// meshconfig.MountPath/meshconfig.SocketName).
	Socket string
	// Addresses of the sidecar's own servers; defaults are Istio's ports
	// (":15021", ":15020", "127.0.0.1:15000"). Port 0 picks one.
	HealthAddress, StatsAddress, AdminAddress string
	// Metrics answers /stats/prometheus on the stats port (nil: an empty
	// exposition).
	Metrics http.Handler
	// Middleware returns the stages (telemetry) the proxy runs for the
	// workload, before authorization; it is called again when a document
	// describes the workload differently. Nil means none.
	Middleware func(meshconfig.Workload) []proxy.Middleware
	// AccessLog returns the logger that receives every finished request
	// (telemetry that must see every answer, local ones included: the
	// Middleware stages only see requests that are forwarded); called
	// again when the workload changes. Nil means none.
	AccessLog func(meshconfig.Workload) proxy.AccessLogger
	// TCP counts the connections capture listeners forward whole (the
	// mesh's TCP telemetry); see proxy.Options.TCP.
	TCP func(*proxy.TCPConn) proxy.TCPStream
	// AppProbers are the app containers' original probes the stats
	// server performs at their /app-health/ paths (prober.go; from
	// ISTIO_KUBE_APP_PROBERS, see ParseAppProbers).
	AppProbers meshconfig.AppProbers
	// DrainTimeout bounds draining connections when Run ends (default
	// 5s, Istio's terminationDrainDuration).
	DrainTimeout time.Duration
	// PollTimeout bounds one long poll of the node (default 90s; the
	// node answers within about 30s).
	PollTimeout time.Duration
}

// Sidecar is one pod's sidecar runtime.
type Sidecar struct {
	opts  Options
	log   *slog.Logger
	proxy *proxy.Proxy
	node  *http.Client

	ready     chan struct{}
	readyOnce sync.Once
	draining  atomic.Bool

	doc    atomic.Pointer[meshconfig.Sidecar] // the applied document
	engine atomic.Pointer[authz.Engine]
	logger atomic.Pointer[proxy.AccessLogger]

	stagesMu sync.Mutex
	stages   []*stage // one per proxy handler chain
	workload *meshconfig.Workload
	mws      []proxy.Middleware

	addrMu sync.Mutex
	addrs  map[string]net.Addr
}

// New returns a Sidecar. It does no I/O.
func New(opts Options) *Sidecar {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Socket == "" {
		opts.Socket = filepath.Join(meshconfig.MountPath, meshconfig.SocketName)
	}
	if opts.HealthAddress == "" {
		opts.HealthAddress = ":" + strconv.Itoa(meshconfig.HealthPort)
	}
	if opts.StatsAddress == "" {
		opts.StatsAddress = ":" + strconv.Itoa(meshconfig.StatsPort)
	}
	if opts.AdminAddress == "" {
		opts.AdminAddress = "127.0.0.1:" + strconv.Itoa(meshconfig.AdminPort)
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 90 * time.Second
	}
	s := &Sidecar{opts: opts, log: opts.Logger.With("component", "sidecar"), ready: make(chan struct{}),
		addrs: map[string]net.Addr{}}
	socket := opts.Socket
	s.node = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 2,
	}}
	s.proxy = proxy.New(proxy.Options{
		Logger:          opts.Logger,
		AccessLog:       accessLog{&s.logger},
		Middleware:      []proxy.Middleware{s.telemetryStage, authz.Middleware(s.engine.Load)},
		ShutdownTimeout: opts.DrainTimeout,
		TCP:             opts.TCP,
		AuthorizeConn:   s.authorizeConn,
	})
	return s
}

// Ready is closed once a first document is applied: the capture
// listeners are bound and serve it.
func (s *Sidecar) Ready() <-chan struct{} { return s.ready }

// Proxy is the sidecar's proxy.
func (s *Sidecar) Proxy() *proxy.Proxy { return s.proxy }

// Names of the sidecar's own servers, for Addr.
const (
	HealthServer = "health"
	StatsServer  = "stats"
	AdminServer  = "admin"
)

// Addr is the bound address of one of the sidecar's own servers
// (HealthServer, StatsServer, AdminServer) while Run serves, or nil.
func (s *Sidecar) Addr(server string) net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addrs[server]
}

// Run serves until ctx ends: it binds the sidecar's own ports, runs the
// proxy, and applies the node's documents as they come. When ctx ends it
// stops being ready, drains the proxy's connections (up to
// DrainTimeout) and returns nil. It returns an error only when its own
// ports cannot be bound.
func (s *Sidecar) Run(ctx context.Context) error {
	servers := []struct {
		name, addr string
		h          http.Handler
	}{
		{HealthServer, s.opts.HealthAddress, s.healthMux()},
		{StatsServer, s.opts.StatsAddress, s.statsMux()},
		{AdminServer, s.opts.AdminAddress, s.adminMux()},
	}
	var lns []net.Listener
	for _, sv := range servers {
		ln, err := net.Listen("tcp", sv.addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("sidecar %s server on %s: %w", sv.name, sv.addr, err)
		}
		lns = append(lns, ln)
	}
	s.addrMu.Lock()
	for i, sv := range servers {
		s.addrs[sv.name] = lns[i].Addr()
	}
	s.addrMu.Unlock()
	var wg sync.WaitGroup
	var https []*http.Server
	for i, sv := range servers {
		srv := &http.Server{Handler: sv.h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		https = append(https, srv)
		ln := lns[i]
		wg.Go(func() { _ = srv.Serve(ln) })
	}

	proxyCtx, stopProxy := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProxy()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- s.proxy.Run(proxyCtx) }()
	select {
	case <-s.proxy.Ready():
	case err := <-proxyDone:
		// An empty configuration has nothing to bind: this does not
		// happen, but do not wait forever if it does.
		s.shutdown(https, &wg)
		return fmt.Errorf("sidecar proxy: %w", err)
	}
	s.log.Info("started", "socket", s.opts.Socket, "health", lns[0].Addr().String())

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	wg.Go(func() { s.poll(pollCtx) })

	<-ctx.Done()
	s.draining.Store(true)
	s.log.Info("draining", "timeout", s.opts.DrainTimeout)
	stopPoll()
	stopProxy()
	if err := <-proxyDone; err != nil {
		s.log.Error("proxy stopped", "err", err)
	}
	s.shutdown(https, &wg)
	s.addrMu.Lock()
	clear(s.addrs)
	s.addrMu.Unlock()
	return nil
}

func (s *Sidecar) shutdown(https []*http.Server, wg *sync.WaitGroup) {
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, srv := range https {
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}
	wg.Wait()
}

// apply takes a document: a new authorization engine, then the proxy's
// configuration; either failing rejects the whole document and keeps
// the one in effect.
func (s *Sidecar) apply(doc *meshconfig.Sidecar) error {
	eng, err := authz.New(doc.Authz, s.opts.Logger)
	if err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	if doc.Proxy.Version == "" {
		doc.Proxy.Version = doc.Version
	}
	if err := s.proxy.Update(&doc.Proxy); err != nil {
		return err
	}
	s.engine.Store(eng)
	s.setWorkload(doc.Workload)
	s.doc.Store(doc)
	s.readyOnce.Do(func() { close(s.ready) })
	return nil
}

// telemetryStage is the proxy's first extra stage: the workload's
// telemetry middleware (Options.Middleware), rebuilt when the workload
// changes.
func (s *Sidecar) telemetryStage(next http.Handler) http.Handler {
	st := &stage{next: next}
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	st.build(s.mws)
	s.stages = append(s.stages, st)
	return st
}

func (s *Sidecar) setWorkload(w meshconfig.Workload) {
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	if s.workload != nil && *s.workload == w {
		return
	}
	s.workload = &w
	if s.opts.AccessLog != nil {
		l := s.opts.AccessLog(w)
		s.logger.Store(&l)
	}
	if s.opts.Middleware != nil {
		s.mws = s.opts.Middleware(w)
		for _, st := range s.stages {
			st.build(s.mws)
		}
	}
}

// accessLog hands each request to the workload's current logger.
type accessLog struct {
	cur *atomic.Pointer[proxy.AccessLogger]
}

func (a accessLog) Log(r *http.Request, info *proxy.RequestInfo) {
	if l := a.cur.Load(); l != nil && *l != nil {
		(*l).Log(r, info)
	}
}

// stage is one handler chain's telemetry stage.
type stage struct {
	next http.Handler
	cur  atomic.Pointer[http.Handler]
}

func (st *stage) build(mws []proxy.Middleware) {
	h := proxy.Chain(st.next, mws...)
	st.cur.Store(&h)
}

func (st *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*st.cur.Load()).ServeHTTP(w, r)
}

var errNoDocument = errors.New("no configuration applied yet")
