package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// evict deletes the pods on node whose tolerations of its NoExecute taints
// ran out, and returns how long until the next one does (0: none).
func (c *Controller) evict(ctx context.Context, node *corev1.Node, now time.Time) (time.Duration, error) {
	taints := noExecute(node.Spec.Taints)
	c.mu.Lock()
	for k := range c.seen {
		if k.node == node.Name && !hasKey(taints, k.key) {
			delete(c.seen, k)
		}
	}
	since := func(t corev1.Taint) time.Time {
		if t.TimeAdded != nil {
			return t.TimeAdded.Time
		}
		k := seenKey{node.Name, t.Key}
		if _, ok := c.seen[k]; !ok {
			c.seen[k] = now
		}
		return c.seen[k]
	}
	var due []*corev1.Pod
	var next time.Duration
	for _, pod := range c.podsOn(node.Name) {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := evictAt(pod, taints, since, c.opts.DefaultToleration)
		switch {
		case !ok:
		case !at.After(now):
			due = append(due, pod)
		case next == 0 || at.Sub(now) < next:
			next = at.Sub(now)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, pod := range due {
		errs = append(errs, c.deletePod(ctx, pod))
	}
	return next, errors.Join(errs...)
}

// podsOn returns the pods bound to a node.
func (c *Controller) podsOn(node string) []*corev1.Pod {
	var out []*corev1.Pod
	if objs, err := c.podIndexer.ByIndex(podsByNode, node); err == nil {
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok {
				out = append(out, p)
			}
		}
		return out
	}
	pods, _ := c.pods.List(labels.Everything())
	for _, p := range pods {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

// markPodsNotReady sets the Ready condition of the pods on a node whose
// Ready condition is not True to False, as upstream does, so that Services
// stop sending them traffic long before they are evicted. Only pods that
// became ready before the node stopped being ready are marked: a node
// agent that reports a pod ready again afterwards has the last word.
func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node) error {
	ready := condition(&node.Status, corev1.NodeReady)
	if ready == nil || ready.Status == corev1.ConditionTrue {
		return nil
	}
	var errs []error
	for _, pod := range c.podsOn(node.Name) {
		pc := podCondition(&pod.Status, corev1.PodReady)
		if pc == nil || pc.Status != corev1.ConditionTrue || !pc.LastTransitionTime.Before(&ready.LastTransitionTime) {
			continue
		}
		next := pod.DeepCopy()
		pc = podCondition(&next.Status, corev1.PodReady)
		pc.Status, pc.LastTransitionTime = corev1.ConditionFalse, metav1.NewTime(c.clock.Now())
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("mark pod %s/%s not ready: %w", pod.Namespace, pod.Name, err))
			}
			continue
		}
		c.recorder.Event(pod, corev1.EventTypeWarning, eventNodeNotReady, "Node is not ready")
	}
	return errors.Join(errs...)
}

func podCondition(st *corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// deletePod evicts a pod as upstream's taint eviction does: a
// DisruptionTarget condition first, then a delete with its grace period.
func (c *Controller) deletePod(ctx context.Context, pod *corev1.Pod) error {
	c.log.Info("evicting pod from tainted node", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	c.recorder.Eventf(pod, corev1.EventTypeNormal, eventTaintEviction, "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	withCond := pod.DeepCopy()
	if setDisruptionTarget(&withCond.Status, metav1.NewTime(c.clock.Now())) {
		// Best effort: the delete below is what counts.
		_, _ = c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, withCond, metav1.UpdateOptions{})
	}
	uid := pod.UID
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func setDisruptionTarget(st *corev1.PodStatus, now metav1.Time) bool {
	want := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reasonTaintDeletion,
		Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: now}
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.DisruptionTarget {
			if st.Conditions[i].Status == corev1.ConditionTrue {
				return false
			}
			st.Conditions[i] = want
			return true
		}
	}
	st.Conditions = append(st.Conditions, want)
	return true
}
