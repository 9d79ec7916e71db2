package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// OpenAPI model names, as upstream named these types.
func (PodPreset) OpenAPIModelName() string     { return "io.k8s.api.settings.v1alpha1.PodPreset" }
func (PodPresetSpec) OpenAPIModelName() string { return "io.k8s.api.settings.v1alpha1.PodPresetSpec" }
func (PodPresetList) OpenAPIModelName() string { return "io.k8s.api.settings.v1alpha1.PodPresetList" }

// GetOpenAPIDefinitions returns the OpenAPI schemas of this group's types
// (hand-written in the form openapi-gen generates), for the API server's
// OpenAPI documents: kubectl validates, applies and explains PodPresets
// from them.
func GetOpenAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	str := func(desc string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, Type: []string{"string"}}}
	}
	refTo := func(desc, model string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, Default: map[string]any{}, Ref: ref(model)}}
	}
	arrayOf := func(desc, model string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, Type: []string{"array"},
			Items: &spec.SchemaOrArray{Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Default: map[string]any{}, Ref: ref(model)}}}}}
	}
	const (
		kindDoc       = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
		apiVersionDoc = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."
	)
	return map[string]common.OpenAPIDefinition{
		PodPreset{}.OpenAPIModelName(): {
			Schema: spec.Schema{SchemaProps: spec.SchemaProps{
				Description: "PodPreset is a policy resource that defines additional runtime requirements for a Pod.",
				Type:        []string{"object"},
				Properties: map[string]spec.Schema{
					"kind":       str(kindDoc),
					"apiVersion": str(apiVersionDoc),
					"metadata":   refTo("Standard object's metadata.", metav1.ObjectMeta{}.OpenAPIModelName()),
					"spec":       refTo("", PodPresetSpec{}.OpenAPIModelName()),
				},
			}},
			Dependencies: []string{metav1.ObjectMeta{}.OpenAPIModelName(), PodPresetSpec{}.OpenAPIModelName()},
		},
		PodPresetSpec{}.OpenAPIModelName(): {
			Schema: spec.Schema{SchemaProps: spec.SchemaProps{
				Description: "PodPresetSpec is a description of a pod preset.",
				Type:        []string{"object"},
				Properties: map[string]spec.Schema{
					"selector":     refTo("Selector is a label query over a set of resources, in this case pods. Required.", metav1.LabelSelector{}.OpenAPIModelName()),
					"env":          arrayOf("Env defines the collection of EnvVar to inject into containers.", corev1.EnvVar{}.OpenAPIModelName()),
					"envFrom":      arrayOf("EnvFrom defines the collection of EnvFromSource to inject into containers.", corev1.EnvFromSource{}.OpenAPIModelName()),
					"volumes":      arrayOf("Volumes defines the collection of Volume to inject into the pod.", corev1.Volume{}.OpenAPIModelName()),
					"volumeMounts": arrayOf("VolumeMounts defines the collection of VolumeMount to inject into containers.", corev1.VolumeMount{}.OpenAPIModelName()),
				},
			}},
			Dependencies: []string{metav1.LabelSelector{}.OpenAPIModelName(), corev1.EnvVar{}.OpenAPIModelName(),
				corev1.EnvFromSource{}.OpenAPIModelName(), corev1.Volume{}.OpenAPIModelName(), corev1.VolumeMount{}.OpenAPIModelName()},
		},
		PodPresetList{}.OpenAPIModelName(): {
			Schema: spec.Schema{SchemaProps: spec.SchemaProps{
				Description: "PodPresetList is a list of PodPreset objects.",
				Type:        []string{"object"},
				Properties: map[string]spec.Schema{
					"kind":       str(kindDoc),
					"apiVersion": str(apiVersionDoc),
					"metadata":   refTo("Standard list metadata.", metav1.ListMeta{}.OpenAPIModelName()),
					"items":      arrayOf("Items is a list of schema objects.", PodPreset{}.OpenAPIModelName()),
				},
				Required: []string{"items"},
			}},
			Dependencies: []string{metav1.ListMeta{}.OpenAPIModelName(), PodPreset{}.OpenAPIModelName()},
		},
	}
}
