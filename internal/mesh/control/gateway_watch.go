package control

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// GatewayWatcherOptions configure a GatewayWatcher.
type GatewayWatcherOptions struct {
	// Mesh are the mesh-wide translation settings.
	Mesh MeshOptions
	// Gateway describes the edge proxy (labels, namespace, listen
	// addresses, identity).
	Gateway GatewayOptions
}

// GatewayWatcher keeps the Istio Gateways that select the node's edge
// proxy, and what they route to, in view, and merges their translation
// into the edge proxy's configuration (the ingress controller calls
// Merge on every sync and resyncs when Changed fires). Until a Gateway
// selects the edge proxy it watches Gateways only; then it also watches
// VirtualServices, DestinationRules and ServiceEntries.
type GatewayWatcher struct {
	log  *slog.Logger
	opts GatewayWatcherOptions

	istio                       istioinformers.SharedInformerFactory
	gateways                    cache.SharedIndexInformer
	services, slices, pods, sec cache.SharedIndexInformer

	changed chan struct{}
	synced  atomic.Bool
	// routing is set once the VirtualService, DestinationRule and
	// ServiceEntry informers have been asked for (under mu).
	mu       sync.Mutex
	routing  []cache.SharedIndexInformer
	start    chan struct{} // closed when a Gateway first selects the proxy
	startOne sync.Once
	lastWarn string
}

// NewGatewayWatcher registers its handlers; it does no I/O.
func NewGatewayWatcher(istio istioclient.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts GatewayWatcherOptions) *GatewayWatcher {
	if log == nil {
		log = slog.Default()
	}
	if len(opts.Gateway.Labels) == 0 {
		opts.Gateway.Labels = DefaultGatewayLabels
	}
	w := &GatewayWatcher{
		log: log.With("component", "mesh-gateway"), opts: opts,
		istio:   istioinformers.NewSharedInformerFactory(istio, 0),
		changed: make(chan struct{}, 1),
		start:   make(chan struct{}),
	}
	w.gateways = w.istio.Networking().V1().Gateways().Informer()
	w.services = factory.Core().V1().Services().Informer()
	w.slices = factory.Discovery().V1().EndpointSlices().Informer()
	w.pods = factory.Core().V1().Pods().Informer()
	w.sec = factory.Core().V1().Secrets().Informer()
	onGateway := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if gw, ok := obj.(*networkingv1.Gateway); ok && labelsMatch(gw.Spec.Selector, w.opts.Gateway.Labels) {
			w.startOne.Do(func() { close(w.start) })
			w.notify()
		}
	}
	_, _ = w.gateways.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onGateway, UpdateFunc: func(old, cur any) { onGateway(old); onGateway(cur) }, DeleteFunc: onGateway,
	})
	// Cluster objects matter only while a Gateway selects the proxy.
	ifActive := func(any) {
		if w.active() {
			w.notify()
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: ifActive, UpdateFunc: func(_, o any) { ifActive(o) }, DeleteFunc: ifActive}
	for _, inf := range []cache.SharedIndexInformer{w.services, w.slices, w.pods, w.sec} {
		_, _ = inf.AddEventHandler(h)
	}
	return w
}

// Changed receives a value when Merge would give something new.
func (w *GatewayWatcher) Changed() <-chan struct{} { return w.changed }

func (w *GatewayWatcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// active says whether a Gateway selecting the proxy has been seen.
func (w *GatewayWatcher) active() bool {
	select {
	case <-w.start:
		return true
	default:
		return false
	}
}

// Run watches until ctx ends and returns nil.
func (w *GatewayWatcher) Run(ctx context.Context) error {
	w.istio.Start(ctx.Done())
	defer w.istio.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), w.gateways.HasSynced, w.services.HasSynced, w.slices.HasSynced,
		w.pods.HasSynced, w.sec.HasSynced) {
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-w.start:
	}
	n := w.istio.Networking().V1()
	routing := []cache.SharedIndexInformer{n.VirtualServices().Informer(), n.DestinationRules().Informer(), n.ServiceEntries().Informer()}
	for _, inf := range routing {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { w.notify() }, UpdateFunc: func(any, any) { w.notify() }, DeleteFunc: func(any) { w.notify() },
		})
	}
	w.istio.Start(ctx.Done())
	var synced []cache.InformerSynced
	for _, inf := range routing {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	w.mu.Lock()
	w.routing = routing
	w.mu.Unlock()
	w.synced.Store(true)
	w.log.Info("serving Istio Gateways on the edge proxy")
	w.notify()
	<-ctx.Done()
	return nil
}

// Merge is base with the Gateways' listeners, routes, clusters and
// certificates added (MergeGateway); base itself until a Gateway selects
// the proxy and the caches have synced.
func (w *GatewayWatcher) Merge(base *proxy.Config) (*proxy.Config, []string) {
	if !w.synced.Load() {
		return base, nil
	}
	w.mu.Lock()
	routing := w.routing
	w.mu.Unlock()
	in := GatewayInput{Gateways: listOf[*networkingv1.Gateway](w.gateways)}
	if !slices.ContainsFunc(in.Gateways, func(gw *networkingv1.Gateway) bool {
		return labelsMatch(gw.Spec.Selector, w.opts.Gateway.Labels)
	}) {
		return base, nil
	}
	in.Secrets = listOf[*corev1.Secret](w.sec)
	snap := &Snapshot{
		Services:         listOf[*corev1.Service](w.services),
		EndpointSlices:   listOf[*discoveryv1.EndpointSlice](w.slices),
		Pods:             listOf[*corev1.Pod](w.pods),
		VirtualServices:  listOf[*networkingv1.VirtualService](routing[0]),
		DestinationRules: listOf[*networkingv1.DestinationRule](routing[1]),
		ServiceEntries:   listOf[*networkingv1.ServiceEntry](routing[2]),
	}
	frag, warnings := TranslateGateway(snap, in, w.opts.Mesh, w.opts.Gateway)
	merged, more := MergeGateway(base, frag)
	warnings = append(warnings, more...)
	if msg := strings.Join(warnings, "; "); msg != w.swapWarn(msg) && msg != "" {
		w.log.Warn("gateway configuration", "warnings", warnings)
	}
	return merged, warnings
}

func (w *GatewayWatcher) swapWarn(msg string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.lastWarn
	w.lastWarn = msg
	return old
}

// listOf is an informer's objects of type T.
func listOf[T any](inf cache.SharedIndexInformer) []T {
	items := inf.GetStore().List()
	out := make([]T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
