package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodPreset is a policy resource that defines additional runtime
// requirements for a Pod: env, envFrom and volume mounts merged into its
// containers and volumes into its spec when it is created.
type PodPreset struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PodPresetSpec `json:"spec,omitempty"`
}

// PodPresetSpec is a description of a pod preset.
type PodPresetSpec struct {
	// Selector is a label query over pods: the preset applies to the pods
	// it matches. Required.
	Selector metav1.LabelSelector `json:"selector,omitempty"`
	// Env defines the collection of EnvVar to inject into containers.
	Env []corev1.EnvVar `json:"env,omitempty"`
	// EnvFrom defines the collection of EnvFromSource to inject into
	// containers.
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// Volumes defines the collection of Volume to inject into the pod.
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// VolumeMounts defines the collection of VolumeMount to inject into
	// containers.
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// PodPresetList is a list of PodPreset objects.
type PodPresetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []PodPreset `json:"items"`
}
