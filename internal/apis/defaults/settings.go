package defaults

import (
	corev1 "k8s.io/api/core/v1"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// defaultPodPreset applies to a PodPreset's volumes and env the defaults
// they get in a pod, so that what it injects into pods is already
// defaulted (mutating admission runs after a pod's defaults).
func defaultPodPreset(pp *settingsv1alpha1.PodPreset) {
	for i := range pp.Spec.Volumes {
		defaultVolume(&pp.Spec.Volumes[i])
	}
	// The env vars get a container's env defaults; the rest of this
	// scratch container is discarded.
	scratch := corev1.Container{Env: pp.Spec.Env}
	defaultContainer(&scratch)
}
