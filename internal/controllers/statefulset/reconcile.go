package statefulset

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reconciler is one pass over one StatefulSet: its pods split by ordinal,
// the actions of the pass applied to that view as they happen.
type reconciler struct {
	*Controller
	set             *appsv1.StatefulSet
	current, update *revision
	now             time.Time
	// replicas[i] is the pod with ordinal start+i, nil when it is missing.
	replicas []*corev1.Pod
	// condemned are the pods with ordinals outside the wanted range,
	// highest ordinal first.
	condemned []*corev1.Pod
	// recheck > 0 asks for another pass then (minReadySeconds).
	recheck time.Duration
}

// index sorts the set's pods into replicas and condemned. Pods whose
// names carry no ordinal are left alone.
func (r *reconciler) index(pods []*corev1.Pod) {
	start, n := startOrdinal(r.set), replicaCount(r.set)
	r.replicas = make([]*corev1.Pod, n)
	for _, pod := range pods {
		ord := ordinalOf(r.set, pod)
		switch {
		case ord < 0:
		case ord >= start && ord < start+n:
			r.replicas[ord-start] = pod
		default:
			r.condemned = append(r.condemned, pod)
		}
	}
	slices.SortFunc(r.condemned, func(a, b *corev1.Pod) int { return ordinalOf(r.set, b) - ordinalOf(r.set, a) })
}

// run carries out one pass of upstream's algorithm: first make every
// wanted ordinal exist (creating missing pods, replacing failed ones),
// then remove condemned pods from the highest ordinal down, then roll the
// update from the highest ordinal down to the partition. With
// OrderedReady each step waits until the pods before it are Running and
// Ready and makes at most one change; with Parallel, creation and
// deletion do not wait (updates still go one pod at a time).
func (r *reconciler) run(ctx context.Context) error {
	monotonic := r.set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	start := startOrdinal(r.set)
	for i, pod := range r.replicas {
		ord := start + i
		switch {
		case pod != nil && !isTerminating(pod) && (isFailed(pod) || isSucceeded(pod)):
			r.recorder.Eventf(r.set, corev1.EventTypeWarning, "RecreatingFailedPod",
				"StatefulSet %s/%s is recreating %s Pod %s", r.set.Namespace, r.set.Name, pod.Status.Phase, pod.Name)
			if err := r.deletePod(ctx, pod); err != nil {
				return err
			}
		case pod == nil:
			if err := r.createPod(ctx, i, ord); err != nil {
				return err
			}
		case isTerminating(pod):
		case pod.Status.Phase == corev1.PodPending:
			// Its claims may have been deleted since it was made.
			if err := r.ensureClaims(ctx, pod, ord); err != nil {
				return err
			}
		case !isRunningAndReady(pod):
		default:
			if d := availableIn(pod, r.set.Spec.MinReadySeconds, r.now); d > 0 {
				r.recheckIn(d)
				if monotonic {
					return nil
				}
			}
			if !identityMatches(r.set, pod, ord) {
				if err := r.fixIdentity(ctx, pod, ord); err != nil {
					return err
				}
			}
			continue
		}
		if monotonic {
			return nil
		}
	}
	for _, pod := range r.condemned {
		if isTerminating(pod) {
			if monotonic {
				return nil
			}
			continue
		}
		if err := r.retainOnScaleDown(ctx, pod); err != nil {
			return err
		}
		if err := r.deletePod(ctx, pod); err != nil {
			return err
		}
		if monotonic {
			return nil
		}
	}
	return r.rollUpdate(ctx)
}

// rollUpdate deletes the pod with the highest ordinal at or above the
// partition that is not at the update revision, once every pod above it
// is healthy; the next pass recreates it at the update revision.
func (r *reconciler) rollUpdate(ctx context.Context) error {
	strategy := r.set.Spec.UpdateStrategy
	if strategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return nil
	}
	partition := r.partition()
	start := startOrdinal(r.set)
	for i := len(r.replicas) - 1; i >= 0 && start+i >= partition; i-- {
		pod := r.replicas[i]
		if pod == nil {
			return nil
		}
		if podRevision(pod) != r.update.Name && !isTerminating(pod) {
			r.log.Debug("deleting pod for update", "statefulset", r.set.Namespace+"/"+r.set.Name, "pod", pod.Name, "revision", r.update.Name)
			return r.deletePod(ctx, pod)
		}
		if !isHealthy(pod) {
			return nil
		}
	}
	return nil
}

func (r *reconciler) partition() int {
	if ru := r.set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		return int(*ru.Partition)
	}
	return 0
}

// revisionFor is the revision the pod with ordinal ord is created from:
// during a rolling update, pods below the partition stay at the current
// revision; everything else gets the update revision.
func (r *reconciler) revisionFor(ord int) *revision {
	if r.set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType {
		if ru := r.set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			if ord < r.partition() {
				return r.current
			}
		} else if ord < startOrdinal(r.set)+int(r.set.Status.CurrentReplicas) {
			return r.current
		}
	}
	return r.update
}

// createPod creates the claims and then the pod with ordinal ord.
func (r *reconciler) createPod(ctx context.Context, i, ord int) error {
	pod := newPod(r.set, r.revisionFor(ord), ord)
	if err := r.ensureClaims(ctx, pod, ord); err != nil {
		return err
	}
	created, err := r.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// The cache is behind; the pod's event brings another pass.
		return nil
	}
	if err != nil {
		r.warn(ctx, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", pod.Name, r.set.Name, err)
		return fmt.Errorf("create pod %s: %w", pod.Name, err)
	}
	r.recorder.Eventf(r.set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", pod.Name, r.set.Name)
	r.replicas[i] = created
	return nil
}

// deletePod deletes pod (this very pod: a namesake made since is left
// alone) and marks it terminating in the pass's view.
func (r *reconciler) deletePod(ctx context.Context, pod *corev1.Pod) error {
	err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		err = nil
	}
	if err != nil {
		r.warn(ctx, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", pod.Name, r.set.Name, err)
		return fmt.Errorf("delete pod %s: %w", pod.Name, err)
	}
	r.recorder.Eventf(r.set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", pod.Name, r.set.Name)
	gone := pod.DeepCopy()
	now := metav1.NewTime(r.now)
	gone.DeletionTimestamp = &now
	for i := range r.replicas {
		if r.replicas[i] == pod {
			r.replicas[i] = gone
		}
	}
	for i := range r.condemned {
		if r.condemned[i] == pod {
			r.condemned[i] = gone
		}
	}
	return nil
}

// fixIdentity restores the identity labels of a member pod.
func (r *reconciler) fixIdentity(ctx context.Context, pod *corev1.Pod, ord int) error {
	next := pod.DeepCopy()
	setIdentity(next, ord)
	if _, err := r.client.CoreV1().Pods(pod.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		r.warn(ctx, "FailedUpdate", "update Pod %s in StatefulSet %s failed error: %v", pod.Name, r.set.Name, err)
		return fmt.Errorf("update pod %s: %w", pod.Name, err)
	}
	r.recorder.Eventf(r.set, corev1.EventTypeNormal, "SuccessfulUpdate", "update Pod %s in StatefulSet %s successful", pod.Name, r.set.Name)
	return nil
}

// warn records a warning event unless the failure is the pass being
// stopped.
func (r *reconciler) warn(ctx context.Context, reason, format string, args ...any) {
	if ctx.Err() == nil {
		r.recorder.Eventf(r.set, corev1.EventTypeWarning, reason, format, args...)
	}
}

func (r *reconciler) recheckIn(d time.Duration) {
	if r.recheck == 0 || d < r.recheck {
		r.recheck = d
	}
}
