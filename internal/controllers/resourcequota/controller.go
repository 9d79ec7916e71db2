// Package resourcequota keeps ResourceQuotas' status, the way upstream's
// resource quota controller does: status.hard mirrors spec.hard and
// status.used is recomputed from the objects in the namespace — pods
// (counts and compute, terminal pods released), services, claims, config
// maps, secrets, quotas and count/<resource>.<group> for any served
// resource — whenever a quota is created or its limits change, whenever
// something that held quota goes away (a delete, a pod finishing, a
// Service changing type, a claim shrinking), and for every quota on a
// periodic full resync. Admission (internal/admission/resourcequota)
// charges new objects as they are created; this controller releases what
// they held and corrects any drift.
//
// Only the daemon (and tests) should import this package.
package resourcequota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"skiff.dev/skiff/internal/admission/resourcequota/usage"
	"skiff.dev/skiff/internal/controllers/workloop"
)

// Options tune the controller.
type Options struct {
	// ResyncPeriod is how often every quota is recomputed from scratch
	// (default 5m, upstream's resource-quota-sync-period).
	ResyncPeriod time.Duration
	// Clock tells the time pods are judged at (a pod past its deletion
	// grace period no longer counts); default: the real clock.
	Clock clock.PassiveClock
}

// lister lists the objects of one resource in a namespace.
type lister func(ns string) ([]runtime.Object, error)

// Controller is the ResourceQuota controller.
type Controller struct {
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	quotas   corelisters.ResourceQuotaLister
	listers  map[schema.GroupResource]lister
	log      *slog.Logger
	opts     Options
	loop     *workloop.Loop
	setupErr error

	mu      sync.Mutex
	generic map[schema.GroupResource]*genericSource // count/<resource>.<group> informers, added on demand
}

// New returns a controller watching quotas and the objects they count
// through factory's informers and writing status through client. It does
// no I/O and starts nothing: the caller starts the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, _ record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	core := factory.Core().V1()
	c := &Controller{
		client:  client,
		factory: factory,
		quotas:  core.ResourceQuotas().Lister(),
		log:     log.With("component", "resourcequota-controller"),
		opts:    opts,
		generic: map[schema.GroupResource]*genericSource{},
	}
	c.loop = workloop.New("resourcequota", c.log, c.sync)

	podLister, svcLister, pvcLister := core.Pods().Lister(), core.Services().Lister(), core.PersistentVolumeClaims().Lister()
	cmLister, secretLister := core.ConfigMaps().Lister(), core.Secrets().Lister()
	c.listers = map[schema.GroupResource]lister{
		{Resource: "pods"}: func(ns string) ([]runtime.Object, error) {
			l, err := podLister.Pods(ns).List(labels.Everything())
			return objects(l), err
		},
		{Resource: "services"}: func(ns string) ([]runtime.Object, error) {
			l, err := svcLister.Services(ns).List(labels.Everything())
			return objects(l), err
		},
		{Resource: "persistentvolumeclaims"}: func(ns string) ([]runtime.Object, error) {
			l, err := pvcLister.PersistentVolumeClaims(ns).List(labels.Everything())
			return objects(l), err
		},
		{Resource: "configmaps"}: func(ns string) ([]runtime.Object, error) {
			l, err := cmLister.ConfigMaps(ns).List(labels.Everything())
			return objects(l), err
		},
		{Resource: "secrets"}: func(ns string) ([]runtime.Object, error) {
			l, err := secretLister.Secrets(ns).List(labels.Everything())
			return objects(l), err
		},
		{Resource: "resourcequotas"}: func(ns string) ([]runtime.Object, error) {
			l, err := c.quotas.ResourceQuotas(ns).List(labels.Everything())
			return objects(l), err
		},
	}

	var errs []error
	wait := func(reg cache.ResourceEventHandlerRegistration, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		c.loop.WaitFor(reg.HasSynced)
	}
	wait(core.ResourceQuotas().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.updateQuota,
		DeleteFunc: func(obj any) {
			if ns, ok := namespaceOf(obj); ok {
				c.replenish(ns, schema.GroupResource{Resource: "resourcequotas"})
			}
		},
	}))
	wait(core.Pods().Informer().AddEventHandler(c.replenisher(schema.GroupResource{Resource: "pods"}, func(old, cur any) bool {
		o, ok1 := old.(*corev1.Pod)
		n, ok2 := cur.(*corev1.Pod)
		now := c.opts.Clock.Now()
		return ok1 && ok2 && usage.Charged(o, now) && !usage.Charged(n, now)
	})))
	wait(core.Services().Informer().AddEventHandler(c.replenisher(schema.GroupResource{Resource: "services"}, func(old, cur any) bool {
		o, ok1 := old.(*corev1.Service)
		n, ok2 := cur.(*corev1.Service)
		return ok1 && ok2 && usage.ServiceType(o) != usage.ServiceType(n)
	})))
	wait(core.PersistentVolumeClaims().Informer().AddEventHandler(c.replenisher(schema.GroupResource{Resource: "persistentvolumeclaims"}, func(old, cur any) bool {
		o, ok1 := old.(*corev1.PersistentVolumeClaim)
		n, ok2 := cur.(*corev1.PersistentVolumeClaim)
		if !ok1 || !ok2 {
			return false
		}
		before, _ := usage.ClaimStorage(o)
		after, _ := usage.ClaimStorage(n)
		return after.Cmp(before) < 0
	})))
	wait(core.ConfigMaps().Informer().AddEventHandler(c.replenisher(schema.GroupResource{Resource: "configmaps"}, nil)))
	wait(core.Secrets().Informer().AddEventHandler(c.replenisher(schema.GroupResource{Resource: "secrets"}, nil)))
	c.setupErr = errors.Join(errs...)
	return c
}

func objects[T runtime.Object](l []T) []runtime.Object {
	out := make([]runtime.Object, len(l))
	for i, o := range l {
		out[i] = o
	}
	return out
}

// Run waits for the informers' caches (the caller starts the factory),
// then keeps quotas' status with the given number of workers until ctx
// ends, and returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.setupErr != nil {
		return fmt.Errorf("resourcequota controller: %w", c.setupErr)
	}
	go c.resync(ctx)
	return c.loop.Run(ctx, workers)
}

// resync enqueues every quota each ResyncPeriod.
func (c *Controller) resync(ctx context.Context) {
	t := time.NewTicker(c.opts.ResyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			quotas, err := c.quotas.List(labels.Everything())
			if err != nil {
				continue
			}
			for _, q := range quotas {
				c.enqueue(q)
			}
		}
	}
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.loop.Add(key)
	}
}

// updateQuota looks again at a quota whose limits changed or whose status
// does not cover them yet; the charges admission writes into status.used
// are left alone (recounting then, from caches that may not have seen the
// new objects yet, could undo a charge).
func (c *Controller) updateQuota(old, cur any) {
	o, ok1 := old.(*corev1.ResourceQuota)
	n, ok2 := cur.(*corev1.ResourceQuota)
	if !ok1 || !ok2 {
		return
	}
	if !usage.Equals(o.Spec.Hard, n.Spec.Hard) || needsUsage(n) {
		c.enqueue(n)
	}
}

// needsUsage reports whether status does not yet reflect spec.hard.
func needsUsage(q *corev1.ResourceQuota) bool {
	if !usage.Equals(q.Spec.Hard, q.Status.Hard) {
		return true
	}
	for n := range q.Spec.Hard {
		if _, ok := q.Status.Used[n]; !ok {
			return true
		}
	}
	return false
}

// replenisher returns handlers that recount the namespace's quotas
// counting gr when one of its objects is deleted, or updated in a way
// released reports as giving quota back.
func (c *Controller) replenisher(gr schema.GroupResource, released func(old, cur any) bool) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			if released != nil && released(old, cur) {
				if ns, ok := namespaceOf(cur); ok {
					c.replenish(ns, gr)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if ns, ok := namespaceOf(obj); ok {
				c.replenish(ns, gr)
			}
		},
	}
}

// replenish enqueues the quotas in ns that count objects of gr.
func (c *Controller) replenish(ns string, gr schema.GroupResource) {
	quotas, err := c.quotas.ResourceQuotas(ns).List(labels.Everything())
	if err != nil {
		return
	}
	e := usage.For(gr)
	for _, q := range quotas {
		if len(e.MatchingResources(usage.Names(q.Spec.Hard))) > 0 {
			c.enqueue(q)
		}
	}
}

func namespaceOf(obj any) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return "", false
	}
	ns, _, err := cache.SplitMetaNamespaceKey(key)
	return ns, err == nil && ns != ""
}

// sync recomputes one quota's status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	q, err := c.quotas.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	used, err := c.calculate(ctx, q)
	if err != nil {
		return err
	}
	hard := usage.Add(corev1.ResourceList{}, q.Spec.Hard)
	if usage.Equals(q.Status.Hard, hard) && usage.Equals(q.Status.Used, used) {
		return nil
	}
	next := q.DeepCopy()
	next.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: used}
	if _, err := c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of quota %s: %w", key, err)
	}
	c.log.Debug("status updated", "quota", key, "used", usage.String(used))
	return nil
}

// calculate returns what the namespace's objects use of each resource the
// quota limits. A resource no served kind stands behind uses nothing.
func (c *Controller) calculate(ctx context.Context, q *corev1.ResourceQuota) (corev1.ResourceList, error) {
	names := usage.Names(q.Spec.Hard)
	sels := usage.ScopeSelectors(q)
	used := corev1.ResourceList{}
	now := c.opts.Clock.Now()
	for _, gr := range usage.GroupResources(names) {
		e := usage.For(gr)
		matching := e.MatchingResources(names)
		list, err := c.lister(ctx, gr)
		if err != nil {
			return nil, err
		}
		sum := corev1.ResourceList{}
		if list != nil {
			objs, err := list(q.Namespace)
			if err != nil {
				return nil, err
			}
			for _, obj := range objs {
				ok, err := usage.MatchesScopes(e, sels, obj)
				if err != nil {
					return nil, fmt.Errorf("quota %s/%s: %w", q.Namespace, q.Name, err)
				}
				if !ok {
					continue
				}
				u, err := e.Usage(obj, now)
				if err != nil {
					return nil, err
				}
				sum = usage.Add(sum, usage.Mask(u, matching))
			}
		}
		for _, n := range matching {
			v, ok := sum[n]
			if !ok {
				v = zero(q.Spec.Hard[n])
			}
			used[n] = v
		}
	}
	// Names no evaluator charges (there is no such resource) use nothing.
	for _, n := range names {
		if _, ok := used[n]; !ok {
			used[n] = zero(q.Spec.Hard[n])
		}
	}
	return used, nil
}

// zero is 0 in the format of like.
func zero(like resource.Quantity) resource.Quantity {
	z := like.DeepCopy()
	z.Set(0)
	return z
}
