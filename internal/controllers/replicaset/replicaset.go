// Package replicaset keeps ReplicaSets' pods, the way Kubernetes'
// ReplicaSet controller does: it claims the pods a ReplicaSet's selector
// matches (adopting orphans, releasing pods whose labels stopped
// matching), creates pods from the template or deletes the ones upstream
// would delete first until spec.replicas are active, and reports replicas,
// fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
// minReadySeconds) and observedGeneration in the status.
//
// Expectations (package podcontrol) keep it from creating or deleting
// twice for one look at a stale pod cache. Only the daemon (and tests)
// should import this package.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	"skiff.dev/skiff/internal/controllers/podcontrol"
	"skiff.dev/skiff/internal/controllers/workloop"
)

// kind is what the controller's pods name in their owner references.
var kind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Options tunes the controller.
type Options struct {
	// BurstReplicas caps the pods one sync creates or deletes (default
	// 500, as upstream).
	BurstReplicas int
	// Clock tells the time for availability (default: the real clock).
	Clock clock.PassiveClock
}

// Controller is the ReplicaSet controller.
type Controller struct {
	client    kubernetes.Interface
	log       *slog.Logger
	opts      Options
	pods      podcontrol.Control
	exp       *podcontrol.Expectations
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	setupErr  error

	loop *workloop.Loop
}

// New returns a controller that watches ReplicaSets and Pods through
// factory's informers and acts through client, recording events with
// recorder. It does no I/O and starts nothing: the caller starts the
// factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.BurstReplicas <= 0 {
		opts.BurstReplicas = 500
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	rsInf := factory.Apps().V1().ReplicaSets()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:    client,
		log:       log.With("component", "replicaset-controller"),
		opts:      opts,
		pods:      podcontrol.Control{Client: client, Recorder: recorder},
		exp:       podcontrol.NewExpectations(opts.Clock),
		rsLister:  rsInf.Lister(),
		podLister: podInf.Lister(),
	}
	c.loop = workloop.New("replicaset", c.log, c.sync)
	rsReg, err1 := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.deleteReplicaSet,
	})
	podReg, err2 := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	if c.setupErr = errors.Join(err1, err2); c.setupErr == nil {
		c.loop.WaitFor(rsReg.HasSynced, podReg.HasSynced)
	}
	return c
}

func (c *Controller) queue() workqueue.TypedRateLimitingInterface[string] { return c.loop.Queue() }

// Run waits for the informers' caches (the caller starts the factory),
// then reconciles with the given number of workers until ctx ends, and
// returns nil then.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.setupErr != nil {
		return fmt.Errorf("replicaset controller: %w", c.setupErr)
	}
	return c.loop.Run(ctx, workers)
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue().Add(key)
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.exp.Forget(key)
	c.queue().Add(key)
}

// addPod notes a pod's creation for its ReplicaSet, or wakes the
// ReplicaSets that might adopt an orphan.
func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen first on its way out (a restarted controller).
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if rs := c.resolve(pod.Namespace, ref); rs != nil {
			key := keyOf(rs)
			c.exp.CreationObserved(key)
			c.queue().Add(key)
		}
		return
	}
	c.enqueueMatching(pod)
}

func (c *Controller) updatePod(oldObj, curObj any) {
	old, cur := oldObj.(*corev1.Pod), curObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	labelsChanged := !labels.Equals(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !refEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		if rs := c.resolve(old.Namespace, oldRef); rs != nil {
			c.queue().Add(keyOf(rs))
		}
	}
	if curRef != nil {
		if rs := c.resolve(cur.Namespace, curRef); rs != nil {
			c.queue().Add(keyOf(rs))
		}
		return
	}
	if labelsChanged || refChanged {
		c.enqueueMatching(cur)
	}
}

// deletePod notes a pod's deletion for its ReplicaSet.
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
	if ref == nil {
		return
	}
	if rs := c.resolve(pod.Namespace, ref); rs != nil {
		key := keyOf(rs)
		c.exp.DeletionObserved(key, podKey(pod))
		c.queue().Add(key)
	}
}

// resolve returns the ReplicaSet ref names, if it is the one in the cache.
func (c *Controller) resolve(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != kind.Kind || ref.APIVersion != kind.GroupVersion().String() {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// enqueueMatching wakes the ReplicaSets whose selector matches an orphan.
func (c *Controller) enqueueMatching(pod *corev1.Pod) {
	list, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, rs := range list {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		c.queue().Add(keyOf(rs))
	}
}

func refEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func keyOf(rs *appsv1.ReplicaSet) string { return rs.Namespace + "/" + rs.Name }

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// requeueAfter schedules another look at key.
func (c *Controller) requeueAfter(key string, d time.Duration) { c.queue().AddAfter(key, d) }
