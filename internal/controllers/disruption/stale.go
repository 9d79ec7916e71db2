package disruption

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// staleCondition reports whether the pod carries a DisruptionTarget
// condition that no deletion followed, and how long until it counts as
// stale. Conditions the kubelet set, and those of pods being deleted or
// finished, are never stale.
func (c *Controller) staleCondition(pod *corev1.Pod) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	cond := disruptionTarget(pod)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason == corev1.PodReasonTerminationByKubelet {
		return false, 0
	}
	return true, max(c.opts.StalePodDisruptionTimeout-c.opts.Clock.Since(cond.LastTransitionTime.Time), 0)
}

func disruptionTarget(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.DisruptionTarget {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// syncStalePod resets a stale DisruptionTarget condition to False.
func (c *Controller) syncStalePod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	stale, after := c.staleCondition(pod)
	if !stale {
		return nil
	}
	if after > 0 {
		c.staleDue.After(key, after)
		return nil
	}
	next := pod.DeepCopy()
	cond := disruptionTarget(next)
	cond.Status = corev1.ConditionFalse
	cond.LastTransitionTime = metav1.NewTime(c.opts.Clock.Now())
	if _, err := c.client.CoreV1().Pods(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.log.Debug("reset stale DisruptionTarget condition", "pod", key)
	return nil
}
