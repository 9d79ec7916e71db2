package v1alpha1_test

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/validation/spec"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

func sample() *settingsv1alpha1.PodPreset {
	return &settingsv1alpha1.PodPreset{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"a": "b"}},
		Spec: settingsv1alpha1.PodPresetSpec{
			Selector:     metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}},
			Env:          []corev1.EnvVar{{Name: "A", Value: "1"}},
			EnvFrom:      []corev1.EnvFromSource{{Prefix: "X_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
			Volumes:      []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v"}},
		},
	}
}

func TestDeepCopyIsDeep(t *testing.T) {
	in := sample()
	out := in.DeepCopyObject().(*settingsv1alpha1.PodPreset)
	if !equality.Semantic.DeepEqual(in, out) {
		t.Fatal("copy differs")
	}
	out.Labels["a"] = "changed"
	out.Spec.Env[0].Value = "changed"
	out.Spec.EnvFrom[0].ConfigMapRef.Name = "changed"
	out.Spec.Volumes[0].EmptyDir.Medium = corev1.StorageMediumMemory
	out.Spec.VolumeMounts[0].MountPath = "/changed"
	out.Spec.Selector.MatchLabels["role"] = "changed"
	if !equality.Semantic.DeepEqual(in, sample()) {
		t.Fatalf("changing the copy changed the original: %+v", in)
	}
	list := &settingsv1alpha1.PodPresetList{Items: []settingsv1alpha1.PodPreset{*sample()}}
	lc := list.DeepCopyObject().(*settingsv1alpha1.PodPresetList)
	lc.Items[0].Spec.Env[0].Value = "changed"
	if list.Items[0].Spec.Env[0].Value != "1" {
		t.Fatal("list copy is shallow")
	}
}

func TestSchemeAndJSON(t *testing.T) {
	s := runtime.NewScheme()
	if err := settingsv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	gvk := settingsv1alpha1.SchemeGroupVersion.WithKind("PodPreset")
	obj, err := s.New(gvk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := obj.(*settingsv1alpha1.PodPreset); !ok {
		t.Fatalf("scheme made a %T", obj)
	}
	data, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var back settingsv1alpha1.PodPreset
	if err := json.Unmarshal(data, &back); err != nil || !equality.Semantic.DeepEqual(&back, sample()) {
		t.Fatalf("JSON round trip: %v\n%s", err, data)
	}
}

func TestOpenAPIDefinitions(t *testing.T) {
	defs := settingsv1alpha1.GetOpenAPIDefinitions(func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) })
	for _, name := range []string{"io.k8s.api.settings.v1alpha1.PodPreset", "io.k8s.api.settings.v1alpha1.PodPresetSpec", "io.k8s.api.settings.v1alpha1.PodPresetList"} {
		if _, ok := defs[name]; !ok {
			t.Errorf("no definition %s", name)
		}
	}
	props := defs["io.k8s.api.settings.v1alpha1.PodPresetSpec"].Schema.Properties
	for _, field := range []string{"selector", "env", "envFrom", "volumes", "volumeMounts"} {
		if _, ok := props[field]; !ok {
			t.Errorf("PodPresetSpec schema lacks %s", field)
		}
	}
}
