// Package cronjob runs batch/v1 CronJobs the way Kubernetes' CronJob
// controller (v2) does: at each time its schedule names it creates a Job
// from the template, named "<cronjob>-<scheduled minutes since the
// epoch>" so that a time is never run twice, honouring suspend,
// startingDeadlineSeconds, concurrencyPolicy (Allow, Forbid, Replace) and
// spec.timeZone or a CRON_TZ= prefix. It keeps status.active,
// lastScheduleTime and lastSuccessfulTime, and deletes the oldest finished
// Jobs beyond the history limits.
//
// Schedules are parsed by ParseSchedule (this package's own parser,
// accepting what upstream's accepts). Time comes from Options.Clock, so
// tests can drive the schedule with a fake clock.
//
// Only the daemon should import this package.
package cronjob

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"skiff.dev/skiff/internal/controllers/wakeup"
)

// Options tunes the controller.
type Options struct {
	// Clock says what time it is (default: the real clock). If it also
	// implements clock.WithTicker (k8s.io/utils/clock/testing.FakeClock
	// does), the controller waits for scheduled times on it.
	Clock clock.PassiveClock
}

// Controller is the CronJob controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.PassiveClock

	cronJobs   batchlisters.CronJobLister
	jobIndexer cache.Indexer
	synced     []cache.InformerSynced

	queue   workqueue.TypedRateLimitingInterface[string]
	wakeups *wakeup.Wakeups[string]
	// written holds, per CronJob, the resourceVersion of the last status
	// this controller wrote, so a sync never acts on an older copy.
	written sync.Map
}

// jobsByController indexes Jobs by the UID of their controller.
const jobsByController = "cronjob-controller-uid"

var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// New returns a controller that watches CronJobs and Jobs through
// factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	cjInf := factory.Batch().V1().CronJobs()
	jobInf := factory.Batch().V1().Jobs()
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "cronjob-controller"),
		clock:    opts.Clock,
		cronJobs: cjInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob"}),
		wakeups: wakeup.New[string](opts.Clock),
	}
	// This fails only on an informer already started; jobsOf() then
	// scans instead.
	_ = jobInf.Informer().AddIndexers(cache.Indexers{jobsByController: indexByController})
	c.jobIndexer = jobInf.Informer().GetIndexer()
	enqueue := func(obj any) {
		if cj, ok := obj.(*batchv1.CronJob); ok {
			c.queue.Add(cj.Namespace + "/" + cj.Name)
		}
	}
	_, _ = cjInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
	})
	onJob := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		job, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOfNoCopy(job); ref != nil && ref.Kind == controllerKind.Kind && ref.APIVersion == controllerKind.GroupVersion().String() {
			c.queue.Add(job.Namespace + "/" + ref.Name)
		}
	}
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onJob,
		UpdateFunc: func(old, cur any) {
			onJob(cur)
			// A Job taken from one CronJob tells the old one too.
			if o, ok := old.(*batchv1.Job); ok {
				if n, ok := cur.(*batchv1.Job); ok && !sameController(o, n) {
					onJob(old)
				}
			}
		},
		DeleteFunc: onJob,
	})
	c.synced = []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced}
	return c
}

func sameController(a, b *batchv1.Job) bool {
	ra, rb := metav1.GetControllerOfNoCopy(a), metav1.GetControllerOfNoCopy(b)
	if ra == nil || rb == nil {
		return ra == rb
	}
	return ra.UID == rb.UID
}

func indexByController(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// Run waits for the CronJob and Job caches, then syncs CronJobs with the
// given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("cronjob controller: caches did not sync")
	}
	c.log.Info("started", "workers", workers)
	var wg sync.WaitGroup
	wg.Go(func() { c.wakeups.Run(ctx, c.queue.Add) })
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	next, err := c.sync(ctx, key)
	if next != nil {
		c.wakeups.At(key, *next)
	}
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("will retry", "cronjob", key, "err", err)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// jobsOf lists the Jobs the CronJob controls.
func (c *Controller) jobsOf(cj *batchv1.CronJob) []*batchv1.Job {
	objs, err := c.jobIndexer.ByIndex(jobsByController, string(cj.UID))
	if err != nil {
		// No index (the informer had started before New): scan.
		objs = c.jobIndexer.List()
	}
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok && j.Namespace == cj.Namespace && metav1.IsControlledBy(j, cj) {
			jobs = append(jobs, j)
		}
	}
	return jobs
}
