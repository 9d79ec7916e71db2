// Package daemonset runs DaemonSets the way Kubernetes' daemonset
// controller does: one pod per eligible node (the template's nodeSelector
// and required node affinity match it, and its tolerations, with the
// automatic ones every daemon pod gets, tolerate the node's taints), pods
// removed from nodes that stop being eligible, RollingUpdate (maxUnavailable
// or maxSurge) and OnDelete updates, and the status counters kubectl reads.
//
// Unlike upstream, which gives pods a node affinity and lets the scheduler
// bind them, pods are created with spec.nodeName set, so DaemonSets work
// without a scheduler. Pods carry the hash of the template they were made
// from (controller-revision-hash); Skiff serves no ControllerRevisions yet,
// so there is no revision history (kubectl rollout undo).
//
// Only the daemon should import this package.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Options tunes the controller.
type Options struct {
	// Clock tells time for minReadySeconds, expectations and the failed-pod
	// backoff; nil means the real clock.
	Clock clock.PassiveClock
	// FailedPodBackoff is the first delay before a failed daemon pod on a
	// node is deleted again (default 1 s, doubling up to 15 min as upstream).
	FailedPodBackoff time.Duration
}

// Controller is the DaemonSet controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	logr     logr.Logger
	clock    clock.PassiveClock

	sets       appslisters.DaemonSetLister
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	synced     []cache.InformerSynced
	handlerErr error

	expect *expectations
	failed *backoff
	queue  atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]
}

const (
	minRetry = 50 * time.Millisecond
	maxRetry = 30 * time.Second
)

// New returns a controller that watches DaemonSets, Pods and Nodes through
// factory and acts through client. It does no I/O and starts nothing.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "daemonset-controller"),
		clock:    opts.Clock,
		expect:   newExpectations(),
		failed:   &backoff{initial: opts.FailedPodBackoff, max: 15 * time.Minute, byKey: map[string]backoffEntry{}},
	}
	c.logr = logr.FromSlogHandler(c.log.Handler())
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.failed.initial <= 0 {
		c.failed.initial = time.Second
	}
	sets := factory.Apps().V1().DaemonSets()
	pods := factory.Core().V1().Pods()
	nodes := factory.Core().V1().Nodes()
	c.sets, c.pods, c.nodes = sets.Lister(), pods.Lister(), nodes.Lister()
	c.synced = []cache.InformerSynced{sets.Informer().HasSynced, pods.Informer().HasSynced, nodes.Informer().HasSynced}
	_, err1 := sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueSet,
		UpdateFunc: func(_, obj any) { c.enqueueSet(obj) },
		DeleteFunc: c.setDeleted,
	})
	_, err2 := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	})
	_, err3 := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: c.nodeUpdated,
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	c.handlerErr = errors.Join(err1, err2, err3)
	return c
}

// Run waits for the DaemonSet, Pod and Node caches (the caller starts the
// factory), then reconciles with the given number of workers until ctx
// ends, and returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.handlerErr != nil {
		return fmt.Errorf("daemonset controller: register handlers: %w", c.handlerErr)
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](minRetry, maxRetry),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"})
	if !c.queue.CompareAndSwap(nil, &queue) {
		queue.ShutDown()
		return errors.New("daemonset controller: already running")
	}
	defer func() { c.queue.Store(nil); queue.ShutDown() }()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("daemonset controller: caches did not sync")
	}
	c.enqueueAll()
	c.log.Info("started", "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx, queue) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) add(key string) {
	if q := c.queue.Load(); q != nil {
		(*q).Add(key)
	}
}

func (c *Controller) enqueueSet(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.add(key)
	}
}

func (c *Controller) setDeleted(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.expect.forget(key)
		c.add(key)
	}
}

func (c *Controller) enqueueAll() {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		c.enqueueSet(ds)
	}
}

// nodeUpdated looks again at every DaemonSet when what decides placement
// (labels, taints, name) changed; status heartbeats do not count.
func (c *Controller) nodeUpdated(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := cur.(*corev1.Node)
	if ok1 && ok2 && maps.Equal(o.Labels, n.Labels) && slices.EqualFunc(o.Spec.Taints, n.Spec.Taints, func(a, b corev1.Taint) bool { return a.MatchTaint(&b) }) {
		return
	}
	c.enqueueAll()
}

// owner returns the key of the DaemonSet controlling pod, or "".
func owner(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

func (c *Controller) podAdded(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if key := owner(pod); key != "" {
		c.expect.created(key)
		if pod.DeletionTimestamp != nil {
			c.expect.deleted(key, podKey(pod))
		}
		c.add(key)
		return
	}
	c.enqueueMatching(pod)
}

func (c *Controller) podUpdated(old, cur any) {
	o, ok1 := old.(*corev1.Pod)
	pod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	if key := owner(o); key != "" && key != owner(pod) {
		c.add(key)
	}
	if key := owner(pod); key != "" {
		if pod.DeletionTimestamp != nil {
			c.expect.deleted(key, podKey(pod))
		}
		c.add(key)
		return
	}
	c.enqueueMatching(pod)
}

func (c *Controller) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if key := owner(pod); key != "" {
		c.expect.deleted(key, podKey(pod))
		c.add(key)
	}
}

// enqueueMatching enqueues the DaemonSets that might adopt an orphan.
func (c *Controller) enqueueMatching(pod *corev1.Pod) {
	if pod.DeletionTimestamp != nil {
		return
	}
	sets, err := c.sets.DaemonSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.enqueueSet(ds)
		}
	}
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

func (c *Controller) processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	requeue, err := c.sync(ctx, key)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("will retry", "daemonset", key, "err", err)
		}
		queue.AddRateLimited(key)
		return true
	}
	queue.Forget(key)
	if requeue > 0 {
		queue.AddAfter(key, requeue)
	}
	return true
}

// sync reconciles one DaemonSet. It returns how soon to look again when
// time alone will change something (minReadySeconds, failed-pod backoff).
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return 0, nil
	}
	if ds.DeletionTimestamp != nil {
		return 0, nil
	}
	hash, err := templateHash(ds)
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	pods, err := c.claimPods(ctx, ds, selector)
	if err != nil {
		return 0, err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: list nodes: %w", key, err)
	}
	r := &reconciler{Controller: c, ds: ds, key: key, hash: hash, now: c.clock.Now(), nodes: nodes, byNode: map[string][]*corev1.Pod{}}
	for _, pod := range pods {
		r.byNode[pod.Spec.NodeName] = append(r.byNode[pod.Spec.NodeName], pod)
	}
	for _, list := range r.byNode {
		slices.SortFunc(list, byAge)
	}
	if !c.expect.satisfied(key, r.now) {
		return r.recheck, c.updateStatus(ctx, ds, r.status(false))
	}
	actErr := r.run(ctx)
	if err := c.updateStatus(ctx, ds, r.status(true)); err != nil {
		return 0, errors.Join(actErr, err)
	}
	if actErr != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, actErr)
	}
	return r.recheck, nil
}
