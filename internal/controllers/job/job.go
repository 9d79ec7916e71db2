// Package job runs batch/v1 Jobs the way Kubernetes' Job controller does:
// it creates pods from the template up to parallelism until completions
// pods have succeeded (NonIndexed or Indexed completion), replaces failed
// pods with an exponential backoff, fails the Job past its backoffLimit or
// activeDeadlineSeconds or when a podFailurePolicy rule says so, honours
// suspend, and deletes finished Jobs once ttlSecondsAfterFinished has
// passed (upstream's separate TTL-after-finished controller, folded in).
//
// Pods are counted exactly once through the batch.kubernetes.io/job-tracking
// finalizer, as upstream does: a finished pod's UID is first written to
// status.uncountedTerminatedPods, then its finalizer is removed, and only
// then is it moved into status.succeeded or status.failed. Conditions go
// through upstream's interim SuccessCriteriaMet / FailureTarget before
// Complete / Failed, which are set once no pod is left terminating.
//
// Orphan pods the selector matches are adopted (and tracked) and pods that
// stop matching are released, through podcontrol like the other workload
// controllers. Backoff records are kept in memory, as upstream keeps them:
// after a restart a replacement pod is created without delay.
//
// Only the daemon should import this package.
package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"skiff.dev/skiff/internal/controllers/podcontrol"
	"skiff.dev/skiff/internal/controllers/wakeup"
)

// Upstream's pod failure backoff: 10 s, doubling, at most 6 min.
const (
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffMax  = 6 * time.Minute
)

// Options tunes the controller. The zero value behaves as upstream.
type Options struct {
	// Clock reads the time for start times, deadlines, backoff and TTLs
	// (default: the real clock). If it also implements clock.WithTicker
	// (k8s.io/utils/clock/testing.FakeClock does), delayed re-syncs wait
	// on it too.
	Clock clock.PassiveClock
	// BackoffBase is the delay before a pod is re-created after one
	// failure; it doubles with each further failure up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
}

// Controller is the Job controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.PassiveClock
	opts     Options

	jobs       batchlisters.JobLister
	pods       corelisters.PodLister
	podIndexer cache.Indexer
	synced     []cache.InformerSynced

	queue   workqueue.TypedRateLimitingInterface[string]
	orphans workqueue.TypedRateLimitingInterface[string]
	wakeups *wakeup.Wakeups[string]

	// expect tracks pod creations and deletions, removed the finalizer
	// removals, until the pod cache shows them.
	expect  *podcontrol.Expectations
	removed *removals
	control podcontrol.Control
	backoff *backoffStore
	// written holds, per Job, the resourceVersion of the last status this
	// controller wrote, so a sync never acts on an older Job from the cache.
	written sync.Map
}

// podsByController indexes pods by the UID of their controller.
const podsByController = "job-controller-uid"

// New returns a controller that watches Jobs and Pods through factory. It
// does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	jobInf := factory.Batch().V1().Jobs()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "job-controller"),
		clock:    opts.Clock,
		opts:     opts,
		jobs:     jobInf.Lister(),
		pods:     podInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job"}),
		orphans: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job_orphan_pod"}),
		wakeups: wakeup.New[string](opts.Clock),
		expect:  podcontrol.NewExpectations(opts.Clock),
		removed: newRemovals(),
		control: podcontrol.Control{Client: client, Recorder: recorder},
		backoff: newBackoffStore(),
	}
	// This fails only on an informer already started; controlled() then
	// scans instead.
	_ = podInf.Informer().AddIndexers(cache.Indexers{podsByController: indexByController})
	c.podIndexer = podInf.Informer().GetIndexer()
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addJob,
		UpdateFunc: func(_, cur any) { c.addJob(cur) },
		DeleteFunc: c.deleteJob,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	c.synced = []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c
}

func indexByController(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

func metaOf(obj any) (metav1.Object, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an object", obj)
	}
	return m, nil
}

// Run waits for the Job and Pod caches, then syncs Jobs with the given
// number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	defer c.orphans.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("job controller: caches did not sync")
	}
	c.log.Info("started", "workers", workers)
	var wg sync.WaitGroup
	wg.Go(func() { c.wakeups.Run(ctx, c.queue.Add) })
	wg.Go(func() {
		for c.processNextOrphan(ctx) {
		}
	})
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	c.orphans.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("will retry", "job", key, "err", err)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) processNextOrphan(ctx context.Context) bool {
	key, quit := c.orphans.Get()
	if quit {
		return false
	}
	defer c.orphans.Done(key)
	if err := c.syncOrphanPod(ctx, key); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("will retry", "pod", key, "err", err)
		}
		c.orphans.AddRateLimited(key)
		return true
	}
	c.orphans.Forget(key)
	return true
}

// enqueue queues a Job now; enqueueAfter when d has passed on the clock.
func (c *Controller) enqueue(job *batchv1.Job) { c.queue.Add(job.Namespace + "/" + job.Name) }

func (c *Controller) enqueueAfter(key string, d time.Duration) {
	if d <= 0 {
		c.queue.Add(key)
		return
	}
	c.wakeups.After(key, d)
}

func (c *Controller) addJob(obj any) {
	if job, ok := obj.(*batchv1.Job); ok {
		c.enqueue(job)
	}
}

func (c *Controller) deleteJob(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	c.queue.Add(m.GetNamespace() + "/" + m.GetName())
	// Its pods' finalizers are no one's business any more.
	if job, ok := m.(*batchv1.Job); ok {
		for _, pod := range c.controlled(job) {
			if hasTrackingFinalizer(pod) {
				c.orphans.Add(pod.Namespace + "/" + pod.Name)
			}
		}
	}
}

// jobFor returns the Job that controls pod according to the cache, or nil.
func (c *Controller) jobFor(pod *corev1.Pod) *batchv1.Job {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "Job" || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil
	}
	job, err := c.jobs.Jobs(pod.Namespace).Get(ref.Name)
	if err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

func (c *Controller) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	job := c.jobFor(pod)
	if job == nil {
		c.maybeOrphan(pod)
		c.enqueueSelecting(pod)
		return
	}
	key := job.Namespace + "/" + job.Name
	c.expect.CreationObserved(key)
	c.observe(key, pod, false)
	c.enqueue(job)
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	pod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || oldPod.ResourceVersion == pod.ResourceVersion {
		return
	}
	if prev := c.jobFor(oldPod); prev != nil && metav1.GetControllerOfNoCopy(pod) == nil {
		c.enqueue(prev)
	}
	job := c.jobFor(pod)
	if job == nil {
		c.maybeOrphan(pod)
		c.enqueueSelecting(pod)
		return
	}
	c.observe(job.Namespace+"/"+job.Name, pod, false)
	c.enqueue(job)
}

func (c *Controller) deletePod(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	pod, ok := m.(*corev1.Pod)
	if !ok {
		return
	}
	job := c.jobFor(pod)
	if job == nil {
		return
	}
	c.observe(job.Namespace+"/"+job.Name, pod, true)
	c.enqueue(job)
}

// observe settles expectations with what the pod cache now shows.
func (c *Controller) observe(key string, pod *corev1.Pod, gone bool) {
	if gone || pod.DeletionTimestamp != nil {
		c.expect.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	}
	if gone || !hasTrackingFinalizer(pod) {
		c.removed.observed(key, pod.UID)
	}
}

// enqueueSelecting queues the Jobs whose selector matches an orphan pod,
// which may adopt it.
func (c *Controller) enqueueSelecting(pod *corev1.Pod) {
	if metav1.GetControllerOfNoCopy(pod) != nil || pod.DeletionTimestamp != nil {
		return
	}
	jobs, err := c.jobs.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, job := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.enqueue(job)
		}
	}
}

// maybeOrphan queues a pod whose Job is gone (or that has none) but that
// still has the tracking finalizer, so the finalizer is removed.
func (c *Controller) maybeOrphan(pod *corev1.Pod) {
	if hasTrackingFinalizer(pod) {
		c.orphans.Add(pod.Namespace + "/" + pod.Name)
	}
}

// syncOrphanPod removes the tracking finalizer from a pod no unfinished
// Job controls.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !hasTrackingFinalizer(pod) {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil && (ref.Kind != "Job" || ref.APIVersion != batchv1.SchemeGroupVersion.String()) {
		return nil
	}
	if job := c.jobFor(pod); job != nil && !finished(job) {
		return nil
	}
	return c.removeFinalizer(ctx, pod)
}
