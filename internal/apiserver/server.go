// Package apiserver serves the Kubernetes API over a store: REST verbs,
// watch, discovery, tables, admission (defaults and validation) and
// authentication. It is the only component that touches the store; every
// other component is its client. Only the daemon imports it.
package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"skiff.dev/skiff/internal/resources"
	"skiff.dev/skiff/internal/store"
)

// TablePrinter gives the columns and row cells of one kind for
// server-side tables.
type TablePrinter func(gk schema.GroupKind) (columns []metav1.TableColumnDefinition, cells func(obj runtime.Object, now time.Time) ([]any, error))

// Config holds the server's collaborators.
type Config struct {
	Store     store.Interface
	Resources []resources.Resource
	// Conversions between served and stored versions, by served GVK.
	Conversions map[schema.GroupVersionKind]Conversion
	Admission   Admission
	// PreDecode, when set, checks and rewrites the JSON of a create,
	// update or patch before it is decoded into the kind's Go type: for
	// types whose own decoding cannot see unknown fields (Istio's
	// protobuf-JSON specs). unknown are messages (`unknown field "..."`)
	// handled by the request's fieldValidation mode like strict
	// decoding's; an error fails the request (a Status as it is, others
	// as 400 Bad Request).
	PreDecode     func(gk schema.GroupKind, data []byte) (out []byte, unknown []string, err error)
	Tables        TablePrinter
	Authenticator Authenticator
	// NonResource serves paths outside /api and /apis that need
	// authentication (OpenAPI documents); may be nil.
	NonResource http.Handler
	// Nodes reaches the node agents for pods/log, pods/exec,
	// pods/attach, pods/portforward and nodes/proxy; nil answers those
	// with 503.
	Nodes NodeConnector
	// Extra are API groups served by handlers of their own
	// (metrics.k8s.io); see ExtraGroup.
	Extra   []ExtraGroup
	Version version.Info
	// ServiceCIDR is the range Services' cluster IPs are allocated from;
	// the zero value means DefaultServiceCIDR (10.96.0.0/12).
	ServiceCIDR netip.Prefix
	// NodePortRange is the range Services' node ports are allocated from;
	// the zero value means DefaultNodePortRange (30000-32767).
	NodePortRange PortRange
	Logger        *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Conversion converts one served version to the storage version and back.
type Conversion struct {
	ToServed, ToStored func(runtime.Object) (runtime.Object, error)
}

// Server is the API server's HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	kinds   map[schema.GroupVersionResource]*kind
	byGK    map[schema.GroupKind]*kind // storage kinds, for cross-resource work
	disc    *discovery
	caches  map[schema.GroupVersionKind]*cacher // by storage GVK
	metrics *metrics
	ready   atomic.Bool
	now     func() time.Time
	// svcAlloc allocates Services' cluster IPs and node ports; nil when
	// Services are not served.
	svcAlloc    *serviceAlloc
	repairGrace time.Duration
}

// New builds the server. It does no I/O.
func New(cfg Config) (*Server, error) {
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		kinds:  map[schema.GroupVersionResource]*kind{},
		byGK:   map[schema.GroupKind]*kind{},
		caches: map[schema.GroupVersionKind]*cacher{},
		now:    cfg.Now,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	conv := map[schema.GroupVersionKind]converter{}
	for gvk, c := range cfg.Conversions {
		conv[gvk] = converter{toServed: c.ToServed, toStored: c.ToStored}
	}
	for _, r := range cfg.Resources {
		k, err := newKind(r, conv)
		if err != nil {
			return nil, err
		}
		k.preDecode = cfg.PreDecode
		s.kinds[r.GVR()] = k
		if k.served == k.storage {
			s.byGK[k.gk] = k
			s.caches[k.storage] = newCacher(k, cfg.Store, s.log)
		}
	}
	s.disc = newDiscovery(cfg.Resources)
	if err := s.disc.addExtra(cfg.Extra); err != nil {
		return nil, err
	}
	s.metrics = newMetrics()
	if s.byGK[serviceGK] != nil {
		a, err := newServiceAlloc(cfg.ServiceCIDR, cfg.NodePortRange, cfg.Store, s.now, s.log)
		if err != nil {
			return nil, err
		}
		s.svcAlloc, s.repairGrace = a, repairGrace
	}
	return s, nil
}

// Run feeds the watch caches and repairs Service allocation records until
// ctx ends. Without it the server still works, each watch then reading
// the store on its own.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.runRepair(ctx) })
	for _, c := range s.caches {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx) }()
	}
	wg.Wait()
}

// SetReady marks the server ready (after post-start work such as
// creating the default namespaces).
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Handler returns the root HTTP handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	ri := parseRequestInfo(r)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "component", "apiserver", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, apierrors.NewInternalError(fmt.Errorf("the server hit an internal error handling this request")))
			}
		}
		s.metrics.observe(r, ri, rec.code, time.Since(start))
	}()
	switch r.URL.Path {
	case "/healthz", "/livez":
		okText(rec)
		return
	case "/readyz":
		if !s.ready.Load() {
			http.Error(rec, "not ready", http.StatusServiceUnavailable)
			return
		}
		if err := s.cfg.Store.Ready(r.Context()); err != nil {
			http.Error(rec, "store not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		okText(rec)
		return
	case "/version":
		writeObject(rec, http.StatusOK, output{}, s.cfg.Version)
		return
	}
	user, err := s.authenticate(r)
	if err != nil {
		writeError(rec, err)
		return
	}
	r = r.WithContext(withUser(r.Context(), user))
	switch {
	case r.URL.Path == "/metrics":
		s.metrics.handler().ServeHTTP(rec, r)
	case ri.isResource && s.serveExtra(rec, r, ri):
	case s.serveNodeStreams(rec, r, ri):
	case ri.isResource:
		s.serveResource(rec, r, ri)
	case s.disc.serve(rec, r):
	case s.cfg.NonResource != nil:
		s.cfg.NonResource.ServeHTTP(rec, r)
	default:
		writeError(rec, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
	}
}

func okText(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// statusRecorder remembers the response code for metrics and logging.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// kindFor finds the served kind a request addresses.
func (s *Server) kindFor(ri requestInfo) (*kind, error) {
	k, ok := s.kinds[schema.GroupVersionResource{Group: ri.group, Version: ri.version, Resource: ri.resource}]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: ri.group, Resource: ri.resource}, "")
	}
	return k, nil
}

// storageKind returns the kind stored for a group and kind.
func (s *Server) storageKind(gk schema.GroupKind) *kind { return s.byGK[gk] }
