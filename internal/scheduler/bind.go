package scheduler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bind asks the API server to bind the assumed pod to node through the
// pods/binding subresource. On success the pod stays assumed until the
// informer shows it bound; on failure it is forgotten and retried.
func (s *Scheduler) bind(ctx context.Context, key string, pod *corev1.Pod, node string) {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	if err == nil {
		s.queue.forget(key)
		s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
		return
	}
	s.cache.forget(pod.UID)
	if ctx.Err() != nil {
		return
	}
	if apierrors.IsNotFound(err) {
		s.queue.forget(key)
		return
	}
	s.log.Warn("binding failed", "pod", key, "node", node, "err", err)
	s.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", fmt.Sprintf("Binding rejected: %v", err))
	s.queue.retry(key)
}

// setCondition sets the pod's PodScheduled condition to False with reason
// and message through the status subresource, unless it already says so.
func (s *Scheduler) setCondition(ctx context.Context, pod *corev1.Pod, reason, msg string) {
	for range 3 {
		next := pod.DeepCopy()
		if !setScheduledFalse(&next.Status, reason, msg, metav1.Now()) {
			return
		}
		_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			s.log.Warn("updating pod status", "pod", podKey(pod), "err", err)
			return
		}
		if pod, err = s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			return
		}
		if pod.Spec.NodeName != "" {
			return
		}
	}
}

// setScheduledFalse sets the PodScheduled=False condition; it reports
// whether anything changed. The transition time moves only when the
// status does.
func setScheduledFalse(st *corev1.PodStatus, reason, msg string, now metav1.Time) bool {
	want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return false
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
		*c = want
		return true
	}
	st.Conditions = append(st.Conditions, want)
	return true
}
