package daemonset

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// status counts as upstream does, per node: desired where a pod should
// run, current where one should run and does, misscheduled where one runs
// but should not; ready, available and updated judge the oldest pod of
// each node that should run one. observed says whether this pass acted on
// the spec's generation (otherwise observedGeneration stays).
func (r *reconciler) status(observed bool) *appsv1.DaemonSetStatus {
	st := &appsv1.DaemonSetStatus{
		ObservedGeneration: r.ds.Status.ObservedGeneration,
		CollisionCount:     r.ds.Status.CollisionCount,
		Conditions:         r.ds.Status.Conditions,
	}
	if observed {
		st.ObservedGeneration = r.ds.Generation
	}
	for _, node := range r.nodes {
		pods := r.byNode[node.Name]
		if !placeOn(r.ds, node, r.logr).shouldRun {
			if len(pods) > 0 {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		st.CurrentNumberScheduled++
		pod := pods[0]
		if isReady(pod) {
			st.NumberReady++
			if isAvailable(pod, r.ds.Spec.MinReadySeconds, r.now) {
				st.NumberAvailable++
			} else if c := readyCondition(pod); c != nil {
				r.recheckIn(max(c.LastTransitionTime.Add(time.Duration(r.ds.Spec.MinReadySeconds)*time.Second).Sub(r.now), time.Second))
			}
		}
		if pod.Labels[HashLabel] == r.hash {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	return st
}

// updateStatus writes status through the status subresource when it
// differs from what ds has, retrying once on a conflict.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, status *appsv1.DaemonSetStatus) error {
	for attempt := 0; ; attempt++ {
		if apiequality.Semantic.DeepEqual(&ds.Status, status) {
			return nil
		}
		next := ds.DeepCopy()
		next.Status = *status
		_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("update status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
		if ds, err = c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("update status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
	}
}
