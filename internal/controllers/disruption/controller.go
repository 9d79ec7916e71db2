// Package disruption keeps PodDisruptionBudgets' status, the way
// upstream's disruption controller does: for each budget it counts the
// pods its selector picks, the pods expected (an integer minAvailable
// counts the pods; a percentage or maxUnavailable scales with the pods'
// controllers — Deployment, ReplicaSet, StatefulSet), the healthy (Ready)
// pods that are neither being deleted nor just evicted, and from those
// desiredHealthy, disruptionsAllowed, the DisruptionAllowed condition and
// observedGeneration. It prunes status.disruptedPods — the pods the
// eviction subresource let go — once they are being deleted or after
// DeletionTimeout, and a failed computation fails safe (no disruptions
// allowed). It also clears a pod's stale DisruptionTarget condition when
// an approved eviction never led to a delete.
//
// The eviction subresource of the API server reads the status this
// controller writes. Only the daemon (and tests) should import this
// package.
package disruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"skiff.dev/skiff/internal/controllers/wakeup"
	"skiff.dev/skiff/internal/controllers/workloop"
)

const (
	// DeletionTimeout is how long an evicted pod may stay without being
	// marked for deletion before the budget counts it healthy again.
	DeletionTimeout = 2 * time.Minute
	// StalePodDisruptionTimeout is how long a pod may carry a
	// DisruptionTarget condition without being deleted before the
	// condition is reset.
	StalePodDisruptionTimeout = 2 * time.Minute
)

// Options tune the controller.
type Options struct {
	// Clock tells the time evictions are aged with (default: real).
	Clock clock.PassiveClock
	// DeletionTimeout overrides DeletionTimeout (tests).
	DeletionTimeout time.Duration
	// StalePodDisruptionTimeout overrides StalePodDisruptionTimeout.
	StalePodDisruptionTimeout time.Duration
}

// Controller is the disruption controller.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	log       *slog.Logger
	opts      Options
	pdbLister policylisters.PodDisruptionBudgetLister
	podLister corelisters.PodLister
	rsLister  appslisters.ReplicaSetLister
	dLister   appslisters.DeploymentLister
	ssLister  appslisters.StatefulSetLister

	budgets  *workloop.Loop // PodDisruptionBudget keys
	stale    *workloop.Loop // pod keys with a DisruptionTarget condition
	recheck  *wakeup.Wakeups[string]
	staleDue *wakeup.Wakeups[string]
	setupErr error
}

// New returns a controller watching budgets, pods and workloads through
// factory's informers and writing status through client, recording
// events with recorder. It does no I/O and starts nothing: the caller
// starts the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.DeletionTimeout <= 0 {
		opts.DeletionTimeout = DeletionTimeout
	}
	if opts.StalePodDisruptionTimeout <= 0 {
		opts.StalePodDisruptionTimeout = StalePodDisruptionTimeout
	}
	pdbInf := factory.Policy().V1().PodDisruptionBudgets()
	podInf := factory.Core().V1().Pods()
	rsInf := factory.Apps().V1().ReplicaSets()
	dInf := factory.Apps().V1().Deployments()
	ssInf := factory.Apps().V1().StatefulSets()
	c := &Controller{
		client:    client,
		recorder:  recorder,
		log:       log.With("component", "disruption-controller"),
		opts:      opts,
		pdbLister: pdbInf.Lister(),
		podLister: podInf.Lister(),
		rsLister:  rsInf.Lister(),
		dLister:   dInf.Lister(),
		ssLister:  ssInf.Lister(),
		recheck:   wakeup.New[string](opts.Clock),
		staleDue:  wakeup.New[string](opts.Clock),
	}
	c.budgets = workloop.New("disruption", c.log, c.sync)
	c.stale = workloop.New("disruption-stale-pod", c.log, c.syncStalePod)

	var errs []error
	wait := func(reg cache.ResourceEventHandlerRegistration, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		c.budgets.WaitFor(reg.HasSynced)
		c.stale.WaitFor(reg.HasSynced)
	}
	wait(pdbInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	}))
	wait(podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: func(_, cur any) { c.podChanged(cur) },
		DeleteFunc: c.podChanged,
	}))
	for _, inf := range []cache.SharedIndexInformer{rsInf.Informer(), dInf.Informer(), ssInf.Informer()} {
		// Scales are read from these caches; a change of scale shows up
		// as pods coming and going, which requeue the budgets.
		c.budgets.WaitFor(inf.HasSynced)
	}
	c.setupErr = errors.Join(errs...)
	return c
}

// Run waits for the informers' caches (the caller starts the factory),
// then keeps budgets' status with the given number of workers until ctx
// ends, and returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.setupErr != nil {
		return fmt.Errorf("disruption controller: %w", c.setupErr)
	}
	var wg sync.WaitGroup
	var budgetsErr, staleErr error
	wg.Go(func() { c.recheck.Run(ctx, c.budgets.Add) })
	wg.Go(func() { c.staleDue.Run(ctx, c.stale.Add) })
	wg.Go(func() { budgetsErr = c.budgets.Run(ctx, workers) })
	wg.Go(func() { staleErr = c.stale.Run(ctx, 1) })
	wg.Wait()
	return errors.Join(budgetsErr, staleErr)
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.budgets.Add(key)
	}
}

// podChanged requeues the budgets selecting the pod, and schedules the
// reset of a stale DisruptionTarget condition.
func (c *Controller) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	pdbs, err := c.pdbLister.GetPodPodDisruptionBudgets(pod)
	if err == nil {
		if len(pdbs) > 1 {
			c.recorder.Eventf(pod, corev1.EventTypeWarning, "MultiplePodDisruptionBudgets",
				"Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, pdbs[0].Name)
		}
		for _, pdb := range pdbs {
			c.enqueue(pdb)
		}
	}
	if stale, after := c.staleCondition(pod); stale {
		key, _ := cache.MetaNamespaceKeyFunc(pod)
		c.staleDue.After(key, after)
	}
}

// sync recomputes one budget's status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbLister.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = c.trySync(ctx, pdb)
	if err == nil || apierrors.IsConflict(err) {
		return err
	}
	c.log.Warn("failed to sync budget", "pdb", key, "err", err)
	if fsErr := c.failSafe(ctx, pdb, err); fsErr != nil {
		return fsErr
	}
	return err
}

func (c *Controller) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	pods, err := c.podsFor(pdb)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	if len(pods) == 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	expected, desired, unmanaged, err := expectedPods(pdb, pods, c.findScale)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return err
	}
	if len(unmanaged) > 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	now := c.opts.Clock.Now()
	disrupted, expired, recheck := pruneDisrupted(pdb, pods, now, c.opts.DeletionTimeout)
	for _, pod := range expired {
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
	}
	healthy := countHealthy(pods, disrupted, now, c.opts.DeletionTimeout)
	next := newStatus(pdb, healthy, desired, expected, disrupted)
	if !upToDate(pdb, next) {
		if err := c.writeStatus(ctx, pdb, next); err != nil {
			return err
		}
	}
	if recheck != nil {
		c.recheck.At(pdb.Namespace+"/"+pdb.Name, *recheck)
	}
	return nil
}

// podsFor lists the pods the budget selects (an empty selector selects
// all pods of the namespace in policy/v1).
func (c *Controller) podsFor(pdb *policyv1.PodDisruptionBudget) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return c.podLister.Pods(pdb.Namespace).List(sel)
}

// failSafe allows no disruptions when the status cannot be computed.
func (c *Controller) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error) error {
	next := pdb.DeepCopy()
	next.Status.DisruptionsAllowed = 0
	if next.Status.Conditions == nil {
		next.Status.Conditions = []metav1.Condition{}
	}
	apimeta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.SyncFailedReason,
		Message:            cause.Error(),
		ObservedGeneration: next.Status.ObservedGeneration,
	})
	return c.writeStatus(ctx, pdb, next.Status)
}

// writeStatus writes the status once; a conflict requeues the budget.
func (c *Controller) writeStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, st policyv1.PodDisruptionBudgetStatus) error {
	next := pdb.DeepCopy()
	next.Status = st
	_, err := c.client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}
