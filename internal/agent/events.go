package agent

import (
	corev1 "k8s.io/api/core/v1"
)

// event records an event about the pod, or about one of its containers
// (fieldPath spec.containers{name}) when container is not empty, as the
// kubelet does.
func (a *Agent) event(pod *corev1.Pod, container, typ, reason, format string, args ...any) {
	if a.recorder == nil || pod == nil {
		return
	}
	ref := &corev1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
	}
	if container != "" {
		if isInit(pod, container) {
			ref.FieldPath = "spec.initContainers{" + container + "}"
		} else {
			ref.FieldPath = "spec.containers{" + container + "}"
		}
	}
	a.recorder.Eventf(ref, typ, reason, format, args...)
}
