package validation

import (
	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// validatePodPreset checks a PodPreset as upstream's settings validation
// did: a valid selector, at least one of env, envFrom, volumes and
// volumeMounts, and each of those as valid as in a pod.
func validatePodPreset(pp *settingsv1alpha1.PodPreset) field.ErrorList {
	allErrs := validateObjectMeta(&pp.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validatePodPresetSpec(&pp.Spec)...)
}

func validatePodPresetSpec(spec *settingsv1alpha1.PodPresetSpec) field.ErrorList {
	allErrs := metav1validation.ValidateLabelSelector(&spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))
	if spec.Env == nil && spec.EnvFrom == nil && spec.VolumeMounts == nil && spec.Volumes == nil {
		allErrs = append(allErrs, field.Required(specPath.Child("volumes", "env", "envFrom", "volumeMounts"), "must specify at least one"))
	}
	vols, errs := validateVolumes(spec.Volumes, nil, specPath.Child("volumes"))
	allErrs = append(allErrs, errs...)
	allErrs = append(allErrs, validateEnv(spec.Env, specPath.Child("env"))...)
	allErrs = append(allErrs, validateEnvFrom(spec.EnvFrom, specPath.Child("envFrom"))...)
	mounts := &corev1.Container{VolumeMounts: spec.VolumeMounts}
	return append(allErrs, validateVolumeMounts(mounts, vols, specPath.Child("volumeMounts"))...)
}

// validatePodPresetUpdate: the spec of a PodPreset is immutable.
func validatePodPresetUpdate(pp, old *settingsv1alpha1.PodPreset) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pp.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validatePodPresetSpec(&pp.Spec)...)
	return append(allErrs, immutable(pp.Spec, old.Spec, specPath)...)
}
