// Package endpoints publishes where Services' backends are, the way
// Kubernetes' endpoints, endpointslice and endpointslice-mirroring
// controllers do, as three reconcile loops sharing one set of caches:
//
//   - for each Service with a selector, a core/v1 Endpoints object named
//     after it with the ready and not-ready addresses of the selected pods
//     per port set (terminating pods only with publishNotReadyAddresses);
//   - for the same Services, discovery.k8s.io/v1 EndpointSlices (at most
//     MaxEndpointsPerSlice endpoints each, one per address type and port
//     set) with ready/serving/terminating conditions, labelled
//     kubernetes.io/service-name and managed-by
//     endpointslice-controller.k8s.io;
//   - for Services without a selector, EndpointSlices mirrored from the
//     Endpoints the user wrote, managed-by
//     endpointslicemirroring-controller.k8s.io.
//
// Named target ports are resolved per pod, so pods that name a port
// differently land in different slices. Endpoints carry nodeName and
// targetRef but no zone.
//
// Only the daemon should import this package.
package endpoints

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Values of the endpointslice.kubernetes.io/managed-by label.
const (
	SliceControllerName  = "endpointslice-controller.k8s.io"
	MirrorControllerName = "endpointslicemirroring-controller.k8s.io"
)

// DefaultMaxEndpointsPerSlice is upstream's default.
const DefaultMaxEndpointsPerSlice = 100

// Options tunes the controller.
type Options struct {
	// MaxEndpointsPerSlice bounds the endpoints of one EndpointSlice
	// (default 100; at most 1000, the API's limit).
	MaxEndpointsPerSlice int
}

// Controller runs the three loops.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	maxPer   int

	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced

	// One queue of Service keys (namespace/name) per loop.
	epQueue, sliceQueue, mirrorQueue workqueue.TypedRateLimitingInterface[string]
	// epWritten, sliceWritten and mirrorWritten remember each loop's own
	// writes until the caches show them.
	epWritten, sliceWritten, mirrorWritten *tracker
}

// New returns a controller that watches Services, Pods, Endpoints and
// EndpointSlices through factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.MaxEndpointsPerSlice <= 0 {
		opts.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
	}
	opts.MaxEndpointsPerSlice = min(opts.MaxEndpointsPerSlice, 1000)
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	epInf := factory.Core().V1().Endpoints()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:        client,
		recorder:      recorder,
		log:           log.With("component", "endpoints-controller"),
		maxPer:        opts.MaxEndpointsPerSlice,
		services:      svcInf.Lister(),
		pods:          podInf.Lister(),
		endpoints:     epInf.Lister(),
		slices:        sliceInf.Lister(),
		epQueue:       newQueue("endpoints"),
		sliceQueue:    newQueue("endpointslice"),
		mirrorQueue:   newQueue("endpointslice_mirroring"),
		epWritten:     newTracker(),
		sliceWritten:  newTracker(),
		mirrorWritten: newTracker(),
	}
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onService,
		UpdateFunc: func(_, cur any) { c.onService(cur) },
		DeleteFunc: c.onService,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onPod(nil, obj) },
		UpdateFunc: c.onPod,
		DeleteFunc: func(obj any) { c.onPod(nil, obj) },
	})
	_, _ = epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onEndpoints(obj, false) },
		UpdateFunc: func(_, cur any) { c.onEndpoints(cur, false) },
		DeleteFunc: func(obj any) { c.onEndpoints(obj, true) },
	})
	_, _ = sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onSlice(obj, false) },
		UpdateFunc: func(_, cur any) { c.onSlice(cur, false) },
		DeleteFunc: func(obj any) { c.onSlice(obj, true) },
	})
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
		epInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	return c
}

func newQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// Run waits for the caches, then runs each loop with the given number of
// workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.epQueue.ShutDown()
	defer c.sliceQueue.ShutDown()
	defer c.mirrorQueue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("endpoints controller: caches did not sync")
	}
	c.log.Info("started", "workers", workers)
	loops := []struct {
		queue workqueue.TypedRateLimitingInterface[string]
		sync  func(context.Context, string) error
	}{
		{c.epQueue, c.syncEndpoints},
		{c.sliceQueue, c.syncSlices},
		{c.mirrorQueue, c.syncMirror},
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		for range max(workers, 1) {
			wg.Go(func() {
				for c.processNext(ctx, l.queue, l.sync) {
				}
			})
		}
	}
	<-ctx.Done()
	for _, l := range loops {
		l.queue.ShutDown()
	}
	wg.Wait()
	return nil
}

// errStale asks for another look soon: the cache does not show this
// controller's last write yet.
var errStale = errors.New("cache behind own writes")

// staleRetry is how soon a sync that met a stale cache runs again.
const staleRetry = 50 * time.Millisecond

func (c *Controller) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	err := sync(ctx, key)
	switch {
	case err == nil:
		q.Forget(key)
	case errors.Is(err, errStale):
		q.AddAfter(key, staleRetry)
	default:
		if ctx.Err() == nil {
			c.log.Warn("will retry", "service", key, "err", err)
		}
		q.AddRateLimited(key)
	}
	return true
}

func (c *Controller) onService(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	key := svc.Namespace + "/" + svc.Name
	c.epQueue.Add(key)
	c.sliceQueue.Add(key)
	c.mirrorQueue.Add(key)
}

// onPod queues the Services that select the pod, before or after a
// change that matters to them.
func (c *Controller) onPod(old, cur any) {
	if t, ok := cur.(cache.DeletedFinalStateUnknown); ok {
		cur = t.Obj
	}
	pod, ok := cur.(*corev1.Pod)
	if !ok {
		return
	}
	oldPod, _ := old.(*corev1.Pod)
	if oldPod != nil && !podChanged(oldPod, pod) {
		return
	}
	services, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
		if sel.Matches(labels.Set(pod.Labels)) || oldPod != nil && sel.Matches(labels.Set(oldPod.Labels)) {
			key := svc.Namespace + "/" + svc.Name
			c.epQueue.Add(key)
			c.sliceQueue.Add(key)
		}
	}
}

func (c *Controller) onEndpoints(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return
	}
	key := ep.Namespace + "/" + ep.Name
	c.epWritten.observe(key, ep.Name, ep.ResourceVersion, deleted)
	c.mirrorQueue.Add(key)
	if deleted {
		// A deleted Endpoints of a Service with a selector comes back.
		c.epQueue.Add(key)
	}
}

func (c *Controller) onSlice(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := s.Namespace + "/" + svc
	switch s.Labels[discoveryv1.LabelManagedBy] {
	case SliceControllerName:
		c.sliceWritten.observe(key, s.Name, s.ResourceVersion, deleted)
		c.sliceQueue.Add(key)
	case MirrorControllerName:
		c.mirrorWritten.observe(key, s.Name, s.ResourceVersion, deleted)
		c.mirrorQueue.Add(key)
	}
}
