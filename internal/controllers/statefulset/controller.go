// Package statefulset runs StatefulSets the way Kubernetes' statefulset
// controller does: pods with stable names <set>-<ordinal>, created in
// ordinal order one at a time once the previous one is Running and Ready
// and deleted in reverse (OrderedReady), or all at once (Parallel); a
// PersistentVolumeClaim per pod and volumeClaimTemplate
// (<template>-<set>-<ordinal>), created before the pod, and deleted with
// the set or the scaled-away pod as persistentVolumeClaimRetentionPolicy
// says (through owner references the garbage collector follows);
// RollingUpdate (highest ordinal first, down to the partition) and
// OnDelete updates, with every pod labelled with the revision it was made
// from (controller-revision-hash); and the status counters kubectl reads.
//
// Retention policy changes reach existing claims when their pod is next
// created or scaled away. Claims need the API server to serve
// persistentvolumeclaims; where it does not, pods with claim templates are
// not created (FailedCreate events), as upstream does when a claim cannot be.
//
// Revisions: Skiff's API server does not serve apps/v1 ControllerRevisions
// yet, so the revision a pod was made from is the hash of the pod template
// (see revision.go) and the template of the current revision, which pods
// below the partition are recreated from, is kept in the StatefulSet's
// CurrentRevisionAnnotation.
//
// Only the daemon should import this package.
package statefulset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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
	// Clock tells time for minReadySeconds; nil means the real clock.
	Clock clock.PassiveClock
}

// Controller is the StatefulSet controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.PassiveClock

	sets       appslisters.StatefulSetLister
	pods       corelisters.PodLister
	setsSynced cache.InformerSynced
	podsSynced cache.InformerSynced
	handlerErr error

	// queue exists while Run runs; handlers drop keys before that, and
	// Run enqueues every StatefulSet once the caches are in sync.
	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]
}

// Retry delays for failed syncs.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 30 * time.Second
)

// New returns a controller that watches StatefulSets and Pods through
// factory and acts through client. It does no I/O and starts nothing.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "statefulset-controller"),
		clock:    opts.Clock,
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	sets := factory.Apps().V1().StatefulSets()
	pods := factory.Core().V1().Pods()
	c.sets, c.pods = sets.Lister(), pods.Lister()
	c.setsSynced, c.podsSynced = sets.Informer().HasSynced, pods.Informer().HasSynced
	_, err1 := sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueSet,
		UpdateFunc: func(_, obj any) { c.enqueueSet(obj) },
		DeleteFunc: c.enqueueSet,
	})
	_, err2 := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: func(old, cur any) { c.podChanged(old); c.podChanged(cur) },
		DeleteFunc: c.podChanged,
	})
	c.handlerErr = errors.Join(err1, err2)
	return c
}

// Run waits for the StatefulSet and Pod caches (the caller starts the
// factory), then reconciles with the given number of workers until ctx
// ends, and returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.handlerErr != nil {
		return fmt.Errorf("statefulset controller: register handlers: %w", c.handlerErr)
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](minRetry, maxRetry),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"})
	if !c.queue.CompareAndSwap(nil, &queue) {
		queue.ShutDown()
		return errors.New("statefulset controller: already running")
	}
	defer func() { c.queue.Store(nil); queue.ShutDown() }()
	if !cache.WaitForCacheSync(ctx.Done(), c.setsSynced, c.podsSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("statefulset controller: caches did not sync")
	}
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("statefulset controller: list statefulsets: %w", err)
	}
	for _, set := range sets {
		c.enqueueSet(set)
	}
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

func (c *Controller) addAfter(key string, d time.Duration) {
	if q := c.queue.Load(); q != nil {
		(*q).AddAfter(key, d)
	}
}

func (c *Controller) enqueueSet(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		c.add(key)
	}
}

// podChanged enqueues the StatefulSet that controls pod, or for an orphan
// every StatefulSet whose selector matches it (it may be adopted).
func (c *Controller) podChanged(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if ref.Kind == "StatefulSet" && ref.APIVersion == appsv1.SchemeGroupVersion.String() {
			c.add(pod.Namespace + "/" + ref.Name)
		}
		return
	}
	if pod.DeletionTimestamp != nil {
		return
	}
	sets, err := c.sets.StatefulSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.add(pod.Namespace + "/" + set.Name)
		}
	}
}

func (c *Controller) processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	requeue, err := c.sync(ctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("will retry", "statefulset", key, "err", err)
		}
		queue.AddRateLimited(key)
	default:
		queue.Forget(key)
		if requeue > 0 {
			queue.AddAfter(key, requeue)
		}
	}
	return true
}

// sync reconciles one StatefulSet. It returns how soon to look again when
// time alone will change something (minReadySeconds).
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation rejects these; nothing sensible can be done.
		c.recorder.Eventf(set, corev1.EventTypeWarning, "InvalidSelector", "invalid selector: %v", err)
		return 0, nil
	}
	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return 0, err
	}
	current, update, err := revisions(set)
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	r := &reconciler{Controller: c, set: set, current: current, update: update, now: c.clock.Now()}
	r.index(pods)
	var actErr error
	if set.DeletionTimestamp == nil {
		actErr = r.run(ctx)
	}
	status := r.status()
	if set, err = c.recordRevision(ctx, set, status, current, update); err != nil {
		return 0, errors.Join(actErr, err)
	}
	if err := c.updateStatus(ctx, set, status); err != nil {
		return 0, errors.Join(actErr, err)
	}
	if actErr != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, actErr)
	}
	return r.recheck, nil
}
