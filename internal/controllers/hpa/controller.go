// Package hpa runs HorizontalPodAutoscalers (autoscaling/v2) the way
// Kubernetes' HPA controller does: every sync period it reads the target's
// scale subresource and its pods' resource usage (MetricsClient, i.e. the
// metrics.k8s.io API), computes desired = ceil(current × usage/target)
// with upstream's tolerance and its handling of missing samples and unready
// pods, keeps it within minReplicas/maxReplicas and the scale-up rate,
// stabilizes scale-downs over a window (default 5 min) or applies the
// HPA's behavior (stabilization windows and rate policies), writes the
// new count through the scale subresource, and reports currentReplicas,
// desiredReplicas, currentMetrics and the AbleToScale, ScalingActive and
// ScalingLimited conditions in the status, with events as upstream.
//
// Resource and ContainerResource metrics (cpu, memory; Utilization or
// AverageValue) are supported; Pods, Object and External metrics need a
// custom metrics API Skiff does not have and are reported as invalid.
//
// Only the daemon should import this package.
package hpa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Options tunes the controller; zero values take upstream's defaults.
type Options struct {
	// Metrics reads pod usage; required.
	Metrics MetricsClient
	// Clock tells time for stabilization, policies, pod readiness and
	// status times; nil means the real clock.
	Clock clock.PassiveClock
	// SyncPeriod is how often each HPA is evaluated (default 15 s).
	SyncPeriod time.Duration
	// DownscaleStabilization is the scale-down stabilization window of HPAs
	// without their own (default 5 min).
	DownscaleStabilization time.Duration
	// Tolerance is how far the usage ratio may stray from 1 before the
	// replica count changes (default 0.1).
	Tolerance float64
	// CPUInitialization is how long after a pod starts its CPU samples
	// are distrusted unless it has been Ready a whole sample window
	// (default 5 min).
	CPUInitialization time.Duration
	// InitialReadinessDelay is how long after its start a not-Ready pod
	// counts as never having been Ready (default 30 s).
	InitialReadinessDelay time.Duration
}

// Controller is the HPA controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options
	scales   scaler
	history  *history

	hpas       autoscalinglisters.HorizontalPodAutoscalerLister
	pods       corelisters.PodLister
	synced     []cache.InformerSynced
	handlerErr error

	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]
}

// New returns a controller that watches HPAs and Pods through factory and
// scales targets through client. It does no I/O and starts nothing.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = 15 * time.Second
	}
	if opts.DownscaleStabilization <= 0 {
		opts.DownscaleStabilization = 5 * time.Minute
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 0.1
	}
	if opts.CPUInitialization <= 0 {
		opts.CPUInitialization = 5 * time.Minute
	}
	if opts.InitialReadinessDelay <= 0 {
		opts.InitialReadinessDelay = 30 * time.Second
	}
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "horizontal-pod-autoscaler"),
		opts:     opts,
		scales:   typedScales{client},
		history:  newHistory(),
	}
	hpas := factory.Autoscaling().V2().HorizontalPodAutoscalers()
	pods := factory.Core().V1().Pods()
	c.hpas, c.pods = hpas.Lister(), pods.Lister()
	c.synced = []cache.InformerSynced{hpas.Informer().HasSynced, pods.Informer().HasSynced}
	_, c.handlerErr = hpas.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*autoscalingv2.HorizontalPodAutoscaler)
			n, ok2 := cur.(*autoscalingv2.HorizontalPodAutoscaler)
			// Its own status writes would otherwise evaluate it twice.
			if ok1 && ok2 && apiequality.Semantic.DeepEqual(o.Spec, n.Spec) {
				return
			}
			c.enqueue(cur)
		},
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.history.forget(key)
			}
		},
	})
	return c
}

// Run waits for the HPA and Pod caches (the caller starts the factory),
// then evaluates every HPA each sync period with the given number of
// workers until ctx ends, and returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.handlerErr != nil {
		return fmt.Errorf("hpa controller: register handlers: %w", c.handlerErr)
	}
	if c.opts.Metrics == nil {
		return errors.New("hpa controller: no metrics client")
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, c.opts.SyncPeriod),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "horizontalpodautoscaler"})
	if !c.queue.CompareAndSwap(nil, &queue) {
		queue.ShutDown()
		return errors.New("hpa controller: already running")
	}
	defer func() { c.queue.Store(nil); queue.ShutDown() }()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("hpa controller: caches did not sync")
	}
	hpas, err := c.hpas.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("hpa controller: list: %w", err)
	}
	for _, hpa := range hpas {
		c.enqueue(hpa)
	}
	c.log.Info("started", "workers", workers, "syncPeriod", c.opts.SyncPeriod)
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

func (c *Controller) enqueue(obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	if q := c.queue.Load(); q != nil {
		(*q).Add(key)
	}
}

// processNext evaluates one HPA and schedules its next evaluation: after
// the sync period, or sooner with backoff after an error.
func (c *Controller) processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	found, err := c.sync(ctx, key)
	switch {
	case !found:
		queue.Forget(key)
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("will retry", "hpa", key, "err", err)
		}
		queue.AddRateLimited(key)
	default:
		queue.Forget(key)
		queue.AddAfter(key, c.opts.SyncPeriod)
	}
	return true
}

// sync evaluates one HPA; found is false when it no longer exists.
func (c *Controller) sync(ctx context.Context, key string) (found bool, err error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return false, nil
	}
	hpa, err := c.hpas.HorizontalPodAutoscalers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.history.forget(key)
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("hpa %s: %w", key, err)
	}
	return true, c.reconcile(ctx, key, hpa.DeepCopy())
}
