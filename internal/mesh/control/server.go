package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// IdentityProvider gives workloads their mesh certificates (the node's
// mesh CA, internal/mesh/identity).
type IdentityProvider interface {
	// Identity is pod's current workload certificate.
	Identity(ctx context.Context, pod *corev1.Pod) (*proxy.Identity, error)
	// Rotated tells of pods whose identity was renewed.
	Rotated() <-chan types.UID
}

// Options configure a Server.
type Options struct {
	// NodeName is this node: its injected pods get documents.
	NodeName string
	// DataDir is the node's data directory; each local injected pod's
	// socket is DataDir/meshconfig.PodsDir/<pod UID>/meshconfig.SocketName.
	DataDir string
	// Identity gives workloads their certificates (nil: documents carry
	// no identity).
	Identity IdentityProvider
	// Mesh are the mesh-wide translation settings.
	Mesh MeshOptions
	// Debounce coalesces changes before recomputing (default 50ms).
	Debounce time.Duration
	// PollTimeout is how long a long poll waits before 304 (default 30s).
	PollTimeout time.Duration
	// IstioSyncTimeout bounds the first wait for the Istio caches; after
	// it documents are computed from what has arrived (default 10s).
	IstioSyncTimeout time.Duration
}

// Server computes and serves the documents of this node's sidecars.
type Server struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   Options

	pods, services, slices, namespaces cache.SharedIndexInformer
	istio                              istioinformers.SharedInformerFactory
	// own is the cluster-wide factory the Server made (nil: the caller's,
	// started by it); local watches only this node's pods until own
	// starts.
	own   informers.SharedInformerFactory
	local informers.SharedInformerFactory
	// localPods is this node's pods (own factory only).
	localPodsInf cache.SharedIndexInformer

	dirty    chan struct{}
	rotated  chan types.UID
	mu       sync.Mutex
	proxies  map[types.UID]*proxyState
	statusCh chan struct{}
	// lastStatus is the status ConfigMap's data as last written.
	lastStatus map[string]string
}

// New registers the Server's informers with factory (all pods, Services,
// EndpointSlices, Namespaces) and its own Istio informers; it does no
// I/O. With a nil factory the Server makes its own and watches only this
// node's pods until one of them is injected; the Istio informers too
// start only then, so a node without injected pods pays (almost) nothing
// for the mesh.
func New(client kubernetes.Interface, istio istioclient.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Server {
	if log == nil {
		log = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 30 * time.Second
	}
	if opts.IstioSyncTimeout <= 0 {
		opts.IstioSyncTimeout = 10 * time.Second
	}
	s := &Server{
		client: client, log: log.With("component", "mesh-control"), opts: opts,
		dirty: make(chan struct{}, 1), rotated: make(chan types.UID, 64), statusCh: make(chan struct{}, 1),
		proxies: map[types.UID]*proxyState{},
	}
	if factory == nil {
		factory = informers.NewSharedInformerFactory(client, 0)
		s.own = factory
		s.local = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + opts.NodeName
		}))
		s.localPodsInf = s.local.Core().V1().Pods().Informer()
		s.localPodsInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.markDirty() },
			UpdateFunc: func(any, any) { s.markDirty() },
			DeleteFunc: func(any) { s.markDirty() },
		})
	}
	s.pods = factory.Core().V1().Pods().Informer()
	s.services = factory.Core().V1().Services().Informer()
	s.slices = factory.Discovery().V1().EndpointSlices().Informer()
	s.namespaces = factory.Core().V1().Namespaces().Informer()
	s.istio = istioinformers.NewSharedInformerFactory(istio, 0)
	for _, inf := range append(s.istioInformers(), s.pods, s.services, s.slices, s.namespaces) {
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.markDirty() },
			UpdateFunc: func(any, any) { s.markDirty() },
			DeleteFunc: func(any) { s.markDirty() },
		})
	}
	return s
}

func (s *Server) istioInformers() []cache.SharedIndexInformer {
	n, sec := s.istio.Networking().V1(), s.istio.Security().V1()
	return []cache.SharedIndexInformer{
		n.VirtualServices().Informer(), n.DestinationRules().Informer(), n.ServiceEntries().Informer(),
		n.Sidecars().Informer(), sec.PeerAuthentications().Informer(),
		sec.AuthorizationPolicies().Informer(), sec.RequestAuthentications().Informer(),
	}
}

func (s *Server) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// Run serves until ctx ends, then closes every socket it opened.
func (s *Server) Run(ctx context.Context) error {
	if s.local != nil {
		s.local.Start(ctx.Done())
		defer s.local.Shutdown()
		if !cache.WaitForCacheSync(ctx.Done(), s.localPodsInf.HasSynced) {
			return nil
		}
	} else if !s.waitCluster(ctx) {
		return nil
	}
	defer s.closeAll()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.opts.Identity != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case uid := <-s.opts.Identity.Rotated():
					s.mu.Lock()
					if p := s.proxies[uid]; p != nil {
						p.identity = nil
					}
					s.mu.Unlock()
					s.markDirty()
				}
			}
		})
	}
	wg.Go(func() { s.statusLoop(ctx) })
	istioStarted := false
	s.markDirty()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.dirty:
		}
		// Coalesce a burst of changes into one recomputation.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.opts.Debounce):
		}
		select {
		case <-s.dirty:
		default:
		}
		local := s.localPods()
		if len(local) > 0 && !istioStarted {
			istioStarted = true
			if s.own != nil {
				s.own.Start(ctx.Done())
				defer s.own.Shutdown()
				if !s.waitCluster(ctx) {
					return nil
				}
			}
			s.startIstio(ctx)
		}
		s.recompute(ctx, local)
	}
}

func (s *Server) waitCluster(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), s.pods.HasSynced, s.services.HasSynced, s.slices.HasSynced, s.namespaces.HasSynced)
}

func (s *Server) startIstio(ctx context.Context) {
	s.istio.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, s.opts.IstioSyncTimeout)
	defer cancel()
	var synced []cache.InformerSynced
	for _, inf := range s.istioInformers() {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) && ctx.Err() == nil {
		s.log.Warn("istio objects not synced in time; documents use what has arrived (are the Istio kinds served?)")
	}
	go func() {
		<-ctx.Done()
		s.istio.Shutdown()
	}()
}

// localPods are this node's injected pods that still run.
func (s *Server) localPods() []*corev1.Pod {
	var out []*corev1.Pod
	inf := s.pods
	if s.localPodsInf != nil {
		inf = s.localPodsInf
	}
	for _, o := range inf.GetStore().List() {
		p, ok := o.(*corev1.Pod)
		if !ok || p.Spec.NodeName != s.opts.NodeName || !podMesh(p) {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Snapshot lists the informers' objects.
func (s *Server) snapshot() *Snapshot {
	snap := &Snapshot{}
	for _, o := range s.pods.GetStore().List() {
		if p, ok := o.(*corev1.Pod); ok {
			snap.Pods = append(snap.Pods, p)
		}
	}
	snap.Services = listAs[*corev1.Service](s.services)
	snap.EndpointSlices = listAs[*discoveryv1.EndpointSlice](s.slices)
	snap.Namespaces = listAs[*corev1.Namespace](s.namespaces)
	n, sec := s.istio.Networking().V1(), s.istio.Security().V1()
	all := labels.Everything()
	snap.VirtualServices, _ = n.VirtualServices().Lister().List(all)
	snap.DestinationRules, _ = n.DestinationRules().Lister().List(all)
	snap.ServiceEntries, _ = n.ServiceEntries().Lister().List(all)
	snap.Sidecars, _ = n.Sidecars().Lister().List(all)
	snap.PeerAuthentications, _ = sec.PeerAuthentications().Lister().List(all)
	snap.AuthorizationPolicies, _ = sec.AuthorizationPolicies().Lister().List(all)
	snap.RequestAuthentications, _ = sec.RequestAuthentications().Lister().List(all)
	return snap
}

func listAs[T any](inf cache.SharedIndexInformer) []T {
	var out []T
	for _, o := range inf.GetStore().List() {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// recompute translates every local proxy and publishes the documents
// that changed; proxies of pods that are gone are closed.
func (s *Server) recompute(ctx context.Context, local []*corev1.Pod) {
	seen := map[types.UID]bool{}
	var idx *Index
	if len(local) > 0 {
		idx = NewIndex(s.snapshot(), s.opts.Mesh)
	}
	for _, pod := range local {
		seen[pod.UID] = true
	}
	// Proxies are translated in parallel: the index is read-only.
	work := make(chan *corev1.Pod)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(local), 1)) {
		wg.Go(func() {
			for pod := range work {
				s.update(ctx, idx, pod)
			}
		})
	}
	for _, pod := range local {
		work <- pod
	}
	close(work)
	wg.Wait()
	s.mu.Lock()
	var gone []*proxyState
	for uid, p := range s.proxies {
		if !seen[uid] {
			gone = append(gone, p)
			delete(s.proxies, uid)
		}
	}
	s.mu.Unlock()
	for _, p := range gone {
		p.close()
	}
	if len(gone) > 0 {
		s.statusChanged()
	}
}

// update translates one proxy and publishes its document if it changed.
func (s *Server) update(ctx context.Context, idx *Index, pod *corev1.Pod) {
	p, err := s.ensureProxy(pod)
	if err != nil {
		s.log.Error("cannot serve the sidecar", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	ident := p.currentIdentity()
	if ident == nil && s.opts.Identity != nil {
		// The first certificate is issued in the background (a CSR
		// round trip): the document waits for it, other proxies don't.
		s.fetchIdentity(ctx, p, pod)
		return
	}
	doc, body, warnings := idx.TranslateJSON(pod, ident)
	if doc == nil {
		s.log.Error("translation failed", "pod", pod.Namespace+"/"+pod.Name, "err", warnings)
		return
	}
	if p.publish(doc.Version, body) {
		s.log.Debug("new document", "pod", pod.Namespace+"/"+pod.Name, "version", doc.Version, "warnings", len(warnings))
		for _, w := range warnings {
			s.log.Debug("translation warning", "pod", pod.Namespace+"/"+pod.Name, "warning", w)
		}
	}
}

// identityTimeout bounds one attempt at a pod's first certificate.
const identityTimeout = 30 * time.Second

// fetchIdentity asks for the pod's first workload certificate unless an
// attempt is under way; when it arrives (or fails) the proxies are
// recomputed, so that the document goes out, or the attempt is made again.
func (s *Server) fetchIdentity(ctx context.Context, p *proxyState, pod *corev1.Pod) {
	if !p.fetching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.fetching.Store(false)
		ictx, cancel := context.WithTimeout(ctx, identityTimeout)
		defer cancel()
		ident, err := s.opts.Identity.Identity(ictx, pod)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("no workload identity yet; will retry", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			select { // a pause before the next attempt
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		} else {
			p.setIdentity(ident)
		}
		s.markDirty()
	}()
}

// ensureProxy returns pod's proxy state, listening on its socket.
func (s *Server) ensureProxy(pod *corev1.Pod) (*proxyState, error) {
	s.mu.Lock()
	p := s.proxies[pod.UID]
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	dir := filepath.Join(s.opts.DataDir, meshconfig.PodsDir, string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mesh dir: %w", err)
	}
	sock := filepath.Join(dir, meshconfig.SocketName)
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("stale socket: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// The sidecar runs as meshconfig.ProxyUID.
	if err := os.Chmod(sock, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket mode: %w", err)
	}
	p = newProxyState(pod, s.opts.NodeName, sock, s.opts.PollTimeout, s.statusChanged, s.log)
	p.serve(ln)
	s.mu.Lock()
	s.proxies[pod.UID] = p
	s.mu.Unlock()
	s.log.Info("serving sidecar", "pod", pod.Namespace+"/"+pod.Name, "socket", sock)
	return p, nil
}

func (s *Server) closeAll() {
	s.mu.Lock()
	ps := slices.Collect(maps.Values(s.proxies))
	s.proxies = map[types.UID]*proxyState{}
	s.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

// Statuses are the sync states of this node's proxies.
func (s *Server) Statuses() []ProxyStatus {
	s.mu.Lock()
	ps := slices.Collect(maps.Values(s.proxies))
	s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.status())
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int {
		return cmpStrings(a.Namespace+"/"+a.Pod, b.Namespace+"/"+b.Pod)
	})
	return out
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// proxyState is one sidecar's document and sync state.
type proxyState struct {
	uid                 types.UID
	namespace, pod      string
	node, socket        string
	pollTimeout         time.Duration
	notify              func()
	log                 *slog.Logger
	srv                 *http.Server
	mu                  sync.Mutex
	version             string
	body                []byte
	changed             chan struct{} // closed when version changes
	identity            *proxy.Identity
	fetching            atomic.Bool // a first identity is being issued
	sent, applied, err  string
	connected, reported time.Time
}

func newProxyState(pod *corev1.Pod, node, socket string, poll time.Duration, notify func(), log *slog.Logger) *proxyState {
	return &proxyState{
		uid: pod.UID, namespace: pod.Namespace, pod: pod.Name, node: node, socket: socket,
		pollTimeout: poll, notify: notify, log: log, changed: make(chan struct{}),
	}
}

func (p *proxyState) currentIdentity() *proxy.Identity {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.identity
}

func (p *proxyState) setIdentity(id *proxy.Identity) {
	p.mu.Lock()
	p.identity = id
	p.mu.Unlock()
}

// publish makes doc current if its version differs; it reports whether
// it did.
func (p *proxyState) publish(version string, body []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if version == p.version {
		return false
	}
	p.version, p.body = version, body
	close(p.changed)
	p.changed = make(chan struct{})
	return true
}

func (p *proxyState) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+meshconfig.ConfigPath, p.handleConfig)
	mux.HandleFunc("POST "+meshconfig.StatusPath, p.handleStatus)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("sidecar socket stopped", "pod", p.namespace+"/"+p.pod, "err", err)
		}
	}()
}

func (p *proxyState) close() {
	if p.srv != nil {
		p.srv.Close()
	}
	os.Remove(p.socket)
}

// handleConfig is the long poll: the document as soon as its version
// differs from the caller's, or 304 after the poll timeout.
func (p *proxyState) handleConfig(w http.ResponseWriter, r *http.Request) {
	have := r.URL.Query().Get("version")
	timer := time.NewTimer(p.pollTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		version, body, changed := p.version, p.body, p.changed
		if version != "" && version != have {
			p.sent = version
			p.connected = time.Now()
		}
		p.mu.Unlock()
		if version != "" && version != have {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			p.notify()
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (p *proxyState) handleStatus(w http.ResponseWriter, r *http.Request) {
	var st meshconfig.Status
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&st); err != nil {
		http.Error(w, "bad status: "+err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	if st.Error == "" {
		p.applied = st.Version
	}
	p.err = st.Error
	p.reported = time.Now()
	p.mu.Unlock()
	if st.Error != "" {
		p.log.Warn("sidecar rejected its document", "pod", p.namespace+"/"+p.pod, "version", st.Version, "err", st.Error)
	}
	w.WriteHeader(http.StatusNoContent)
	p.notify()
}

func (p *proxyState) status() ProxyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProxyStatus{
		Pod: p.pod, Namespace: p.namespace, Node: p.node,
		Current: p.version, Sent: p.sent, Applied: p.applied, Error: p.err,
		Connected: p.connected, Reported: p.reported,
	}
}
