package statefulset

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// status counts the pods of the pass's view as upstream does: replicas
// are created pods, ready and available ones are Running and Ready (for
// minReadySeconds), current and updated ones are live pods at the
// current and update revision. When a rolling update has reached every
// pod and all are ready, the update revision becomes the current one.
func (r *reconciler) status() *appsv1.StatefulSetStatus {
	st := &appsv1.StatefulSetStatus{
		ObservedGeneration: r.set.Generation,
		CurrentRevision:    r.current.Name,
		UpdateRevision:     r.update.Name,
		CollisionCount:     r.set.Status.CollisionCount,
		Conditions:         r.set.Status.Conditions,
	}
	for _, pod := range slices.Concat(r.replicas, r.condemned) {
		if pod == nil || !isCreated(pod) {
			continue
		}
		st.Replicas++
		if isRunningAndReady(pod) {
			st.ReadyReplicas++
			if availableIn(pod, r.set.Spec.MinReadySeconds, r.now) == 0 {
				st.AvailableReplicas++
			}
		}
		if !isTerminating(pod) {
			if podRevision(pod) == r.current.Name {
				st.CurrentReplicas++
			}
			if podRevision(pod) == r.update.Name {
				st.UpdatedReplicas++
			}
		}
	}
	if r.set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
	return st
}

// updateStatus writes status through the status subresource when it
// differs from what set has, retrying once on a conflict with the set as
// the server has it.
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	for attempt := 0; ; attempt++ {
		if apiequality.Semantic.DeepEqual(&set.Status, status) {
			return nil
		}
		next := set.DeepCopy()
		next.Status = *status
		_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
		}
		if set, err = c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
		}
	}
}
