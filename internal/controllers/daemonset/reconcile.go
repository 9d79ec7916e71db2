package daemonset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// reconciler is one pass over one DaemonSet.
type reconciler struct {
	*Controller
	ds    *appsv1.DaemonSet
	key   string
	hash  string
	now   time.Time
	nodes []*corev1.Node
	// byNode are the set's pods by node name, bound first and oldest first.
	byNode map[string][]*corev1.Pod
	// recheck > 0 asks for another pass then.
	recheck time.Duration
}

// run makes the pods match the nodes (upstream's manage), or when they
// do, advances a rolling update. (The update works from the pass's view of
// the pods, which is stale once manage acted; the events of what manage
// did bring the next pass.)
func (r *reconciler) run(ctx context.Context) error {
	create, del := r.manage()
	if len(create) > 0 || len(del) > 0 {
		return r.apply(ctx, create, del)
	}
	if r.ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return nil
	}
	create, del = r.rollingUpdate()
	return r.apply(ctx, create, del)
}

// manage returns the nodes that need a pod and the pods to delete: a pod
// on every node that should run one and has none; failed and finished pods
// deleted (failed ones with backoff); extra pods beyond one per node
// deleted (beyond an old/new pair while surging); pods on nodes that
// should not keep them, or on nodes that no longer exist, deleted.
func (r *reconciler) manage() (create []string, del []*corev1.Pod) {
	surge := r.maxSurgeAllowed()
	known := map[string]bool{}
	for _, node := range r.nodes {
		known[node.Name] = true
		place := placeOn(r.ds, node, r.logr)
		pods := r.byNode[node.Name]
		switch {
		case place.shouldRun && len(pods) == 0:
			create = append(create, node.Name)
		case place.shouldContinue:
			var running []*corev1.Pod
			for _, pod := range pods {
				switch {
				case pod.DeletionTimestamp != nil:
				case pod.Status.Phase == corev1.PodFailed:
					if wait := r.failed.wait(r.key+"/"+node.Name, r.now); wait > 0 {
						r.recheckIn(wait)
						continue
					}
					r.recorder.Eventf(r.ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node.Name)
					del = append(del, pod)
				case pod.Status.Phase == corev1.PodSucceeded:
					del = append(del, pod)
				default:
					running = append(running, pod)
				}
			}
			if !surge {
				if len(running) > 1 {
					del = append(del, running[1:]...)
				}
				continue
			}
			if len(running) == 0 && place.shouldRun {
				create = append(create, node.Name)
			}
			del = append(del, r.pruneSurge(running)...)
		default:
			for _, pod := range pods {
				if pod.DeletionTimestamp == nil {
					del = append(del, pod)
				}
			}
		}
	}
	for name, pods := range r.byNode {
		if known[name] {
			continue
		}
		for _, pod := range pods {
			if pod.DeletionTimestamp == nil {
				del = append(del, pod)
			}
		}
	}
	return create, del
}

// pruneSurge keeps, of a node's running pods while surging, the oldest new
// one and the oldest old one, and the old one only while the new one is not
// yet available and the old one is ready.
func (r *reconciler) pruneSurge(running []*corev1.Pod) (del []*corev1.Pod) {
	var oldest, newest *corev1.Pod // oldest old pod, oldest new pod
	for _, pod := range running {
		switch {
		case pod.Labels[HashLabel] == r.hash && newest == nil:
			newest = pod
		case pod.Labels[HashLabel] != r.hash && oldest == nil:
			oldest = pod
		default:
			del = append(del, pod)
		}
	}
	if newest != nil && oldest != nil && (!isReady(oldest) || isAvailable(newest, r.ds.Spec.MinReadySeconds, r.now)) {
		del = append(del, oldest)
	}
	return del
}

// maxSurgeAllowed says whether the update strategy surges.
func (r *reconciler) maxSurgeAllowed() bool {
	surge, _ := r.limits(1)
	return surge > 0
}

// limits are maxSurge and maxUnavailable scaled to desired nodes (rounded
// up); when both come out 0, one pod may be unavailable.
func (r *reconciler) limits(desired int) (surge, unavailable int) {
	ru := r.ds.Spec.UpdateStrategy.RollingUpdate
	if r.ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil {
		return 0, 1
	}
	zero := intstr.FromInt32(0)
	s, u := ru.MaxSurge, ru.MaxUnavailable
	if s == nil {
		s = &zero
	}
	if u == nil {
		one := intstr.FromInt32(1)
		u = &one
	}
	surge, err1 := intstr.GetScaledValueFromIntOrPercent(s, desired, true)
	unavailable, err2 := intstr.GetScaledValueFromIntOrPercent(u, desired, true)
	if err1 != nil || err2 != nil {
		return 0, 1
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// nodePods splits the live pods of a node into the one at the current
// hash and the one at another; ok is false when there are several of
// either (manage cleans those up first).
func (r *reconciler) nodePods(pods []*corev1.Pod) (cur, old *corev1.Pod, ok bool) {
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if pod.Labels[HashLabel] == r.hash {
			if cur != nil {
				return nil, nil, false
			}
			cur = pod
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = pod
		}
	}
	return cur, old, true
}

// rollingUpdate is upstream's: without surge, delete old pods while no more
// than maxUnavailable nodes lack an available pod (manage then creates
// their replacements); with surge, create new pods next to available old
// ones on at most maxSurge nodes at a time and delete each old pod once
// its replacement is available. Unavailable old pods are replaced at once.
func (r *reconciler) rollingUpdate() (create []string, del []*corev1.Pod) {
	desired := 0
	for _, node := range r.nodes {
		if placeOn(r.ds, node, r.logr).shouldRun {
			desired++
		}
	}
	maxSurge, maxUnavailable := r.limits(desired)
	nodes := make([]string, 0, len(r.byNode))
	for name := range r.byNode {
		nodes = append(nodes, name)
	}
	slices.Sort(nodes)
	minReady := r.ds.Spec.MinReadySeconds
	if maxSurge == 0 {
		unavailable := 0
		var replace, candidates []*corev1.Pod
		for _, name := range nodes {
			cur, old, ok := r.nodePods(r.byNode[name])
			switch {
			case !ok, cur == nil && old == nil, cur != nil && old != nil:
				unavailable++
			case cur != nil:
				if !isAvailable(cur, minReady, r.now) {
					unavailable++
				}
			case !isAvailable(old, minReady, r.now):
				replace = append(replace, old)
			case unavailable < maxUnavailable:
				candidates = append(candidates, old)
			}
		}
		room := max(maxUnavailable-unavailable, 0)
		return nil, append(replace, candidates[:min(room, len(candidates))]...)
	}
	surging := 0
	var allowed, candidates []string
	for _, name := range nodes {
		cur, old, ok := r.nodePods(r.byNode[name])
		switch {
		case !ok:
			surging++
		case old == nil:
		case cur == nil:
			switch {
			case !isAvailable(old, minReady, r.now):
				allowed = append(allowed, name)
			case surging < maxSurge:
				candidates = append(candidates, name)
			}
		case !isAvailable(cur, minReady, r.now):
			surging++
		default:
			del = append(del, old)
		}
	}
	room := max(maxSurge-surging, 0)
	return append(allowed, candidates[:min(room, len(candidates))]...), del
}

// apply creates a pod on each node of create and deletes the pods of del,
// expecting to see each in the informer before acting again.
func (r *reconciler) apply(ctx context.Context, create []string, del []*corev1.Pod) error {
	if len(create) == 0 && len(del) == 0 {
		return nil
	}
	keys := make([]string, len(del))
	for i, pod := range del {
		keys[i] = podKey(pod)
	}
	r.log.Debug("syncing pods", "daemonset", r.key, "create on", create, "delete", keys)
	r.expect.expect(r.key, len(create), keys, r.now)
	var errs []error
	for _, node := range create {
		pod := newPod(r.ds, node, r.hash)
		created, err := r.client.CoreV1().Pods(r.ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			r.expect.created(r.key)
			if !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
				r.recorder.Eventf(r.ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			}
			errs = append(errs, fmt.Errorf("create pod on node %s: %w", node, err))
			continue
		}
		r.recorder.Eventf(r.ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	}
	for _, pod := range del {
		err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
		if err != nil {
			r.expect.deleted(r.key, podKey(pod))
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			if ctx.Err() == nil {
				r.recorder.Eventf(r.ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			}
			errs = append(errs, fmt.Errorf("delete pod %s: %w", pod.Name, err))
			continue
		}
		r.recorder.Eventf(r.ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
	}
	return errors.Join(errs...)
}

func (r *reconciler) recheckIn(d time.Duration) {
	if r.recheck == 0 || d < r.recheck {
		r.recheck = d
	}
}
