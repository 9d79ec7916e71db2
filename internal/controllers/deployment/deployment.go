// Package deployment rolls Deployments out through ReplicaSets, the way
// Kubernetes' deployment controller does: one ReplicaSet per pod template,
// named <deployment>-<pod-template-hash> and labelled with the hash;
// RollingUpdate (maxSurge, maxUnavailable, minReadySeconds) or Recreate;
// revisions and change-cause on the ReplicaSets for `kubectl rollout
// history/undo`; proportional scaling; pause and resume;
// revisionHistoryLimit; progressDeadlineSeconds with the Progressing and
// Available conditions; and the status fields kubectl rollout status
// reads. Pods themselves are the replicaset controller's job.
//
// A rollback is a template change (kubectl copies an old ReplicaSet's
// template into the Deployment): the controller finds that ReplicaSet
// again, makes it the new one and gives it the next revision.
//
// Only the daemon (and tests) should import this package.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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
	"skiff.dev/skiff/internal/controllers/workloop"
)

// kind is what the controller's ReplicaSets name in their owner references.
var kind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Options tunes the controller.
type Options struct {
	// Clock tells the time for progress deadlines and conditions
	// (default: the real clock).
	Clock clock.PassiveClock
}

// Controller is the deployment controller.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	log       *slog.Logger
	clock     clock.PassiveClock
	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	setupErr  error
	fresh     freshness

	loop *workloop.Loop
}

// New returns a controller that watches Deployments, ReplicaSets and Pods
// through factory's informers and acts through client, recording events
// with recorder. It does no I/O and starts nothing: the caller starts the
// factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	dInf := factory.Apps().V1().Deployments()
	rsInf := factory.Apps().V1().ReplicaSets()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:    client,
		recorder:  recorder,
		log:       log.With("component", "deployment-controller"),
		clock:     opts.Clock,
		dLister:   dInf.Lister(),
		rsLister:  rsInf.Lister(),
		podLister: podInf.Lister(),
		fresh:     freshness{wrote: map[string]written{}},
	}
	c.loop = workloop.New("deployment", c.log, func(ctx context.Context, key string) error {
		err := c.sync(ctx, key)
		if errors.Is(err, errCacheBehind) {
			// The write's watch event requeues the key too; this is a backstop.
			return workloop.RetryAfter(50*time.Millisecond, err)
		}
		return err
	})
	dReg, err1 := dInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	})
	rsReg, err2 := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	})
	podReg, err3 := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deletePod,
	})
	if c.setupErr = errors.Join(err1, err2, err3); c.setupErr == nil {
		c.loop.WaitFor(dReg.HasSynced, rsReg.HasSynced, podReg.HasSynced)
	}
	return c
}

func (c *Controller) queue() workqueue.TypedRateLimitingInterface[string] { return c.loop.Queue() }

// Run waits for the informers' caches (the caller starts the factory),
// then reconciles with the given number of workers until ctx ends, and
// returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.setupErr != nil {
		return fmt.Errorf("deployment controller: %w", c.setupErr)
	}
	return c.loop.Run(ctx, workers)
}

// errCacheBehind asks for another look once the ReplicaSet cache holds
// the controller's own last writes; it is not a failure.
var errCacheBehind = errors.New("replicaset cache behind own writes")

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue().Add(key)
	}
}

func (c *Controller) addReplicaSet(obj any) {
	rs := obj.(*appsv1.ReplicaSet)
	c.fresh.observe(rs)
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.resolve(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	c.enqueueMatching(rs)
}

func (c *Controller) updateReplicaSet(oldObj, curObj any) {
	old, cur := oldObj.(*appsv1.ReplicaSet), curObj.(*appsv1.ReplicaSet)
	c.fresh.observe(cur)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if d := c.resolve(old.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.resolve(cur.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if !labels.Equals(old.Labels, cur.Labels) || oldRef != nil {
		c.enqueueMatching(cur)
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if rs, ok = tomb.Obj.(*appsv1.ReplicaSet); !ok {
			return
		}
	}
	c.fresh.observe(rs)
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.resolve(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate deployment waiting for its old pods to go.
func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if dref := metav1.GetControllerOfNoCopy(rs); dref != nil {
		if d := c.resolve(rs.Namespace, dref); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			c.enqueue(d)
		}
	}
}

// resolve returns the Deployment ref names, if it is the one in the cache.
func (c *Controller) resolve(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return nil
	}
	d, err := c.dLister.Deployments(namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueMatching wakes the Deployments that might adopt an orphan.
func (c *Controller) enqueueMatching(rs *appsv1.ReplicaSet) {
	list, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range list {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		c.enqueue(d)
	}
}

// freshness keeps the controller from acting on a ReplicaSet cache older
// than its own last writes for a Deployment: acting on absolute replica
// counts read from a cache that misses the previous step could overshoot
// maxSurge or maxUnavailable. It relies on Skiff's resourceVersions being
// etcd revisions (ordered integers), as the garbage collector does.
//
// A write not seen within freshnessTimeout is given up on (a relist after
// the object's deletion may never show its version), so the check can
// delay a sync but never wedge it.
type freshness struct {
	seen  atomic.Uint64 // highest ReplicaSet resourceVersion delivered
	mu    sync.Mutex
	wrote map[string]written // per Deployment key: its latest ReplicaSet write
}

type written struct {
	rv uint64
	at time.Time
}

const freshnessTimeout = 10 * time.Second

func (f *freshness) observe(rs *appsv1.ReplicaSet) {
	rv, err := strconv.ParseUint(rs.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := f.seen.Load()
		if rv <= cur || f.seen.CompareAndSwap(cur, rv) {
			return
		}
	}
}

// record notes a write for key that returned rs.
func (f *freshness) record(key string, rs *appsv1.ReplicaSet) {
	rv, err := strconv.ParseUint(rs.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rv > f.wrote[key].rv {
		f.wrote[key] = written{rv: rv, at: time.Now()}
	}
}

// behind reports whether the cache has yet to deliver key's last write.
func (f *freshness) behind(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.wrote[key]
	if !ok {
		return false
	}
	if w.rv <= f.seen.Load() || time.Since(w.at) > freshnessTimeout {
		delete(f.wrote, key)
		return false
	}
	return true
}
