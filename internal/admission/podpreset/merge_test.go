package podpreset

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

func preset(name string, spec settingsv1alpha1.PodPresetSpec) *settingsv1alpha1.PodPreset {
	return &settingsv1alpha1.PodPreset{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "7"}, Spec: spec}
}

var (
	dbPort     = corev1.EnvVar{Name: "DB_PORT", Value: "6379"}
	cacheVol   = corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	cacheMount = corev1.VolumeMount{Name: "cache", MountPath: "/cache"}
	envFromCM  = corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}
	proxy      = preset("proxy", settingsv1alpha1.PodPresetSpec{
		Env: []corev1.EnvVar{dbPort}, EnvFrom: []corev1.EnvFromSource{envFromCM},
		Volumes: []corev1.Volume{cacheVol}, VolumeMounts: []corev1.VolumeMount{cacheMount},
	})
)

func podWith(edit ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"role": "frontend"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
	}
	for _, e := range edit {
		e(p)
	}
	return p
}

func TestApply(t *testing.T) {
	cases := []struct {
		name     string
		pod      *corev1.Pod
		presets  []*settingsv1alpha1.PodPreset
		want     *corev1.Pod // nil: unchanged
		conflict string
	}{{
		name:    "into an empty pod",
		pod:     podWith(),
		presets: []*settingsv1alpha1.PodPreset{proxy},
		want: podWith(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"podpreset.admission.kubernetes.io/podpreset-proxy": "7"}
			p.Spec.Volumes = []corev1.Volume{cacheVol}
			c := &p.Spec.Containers[0]
			c.Env, c.EnvFrom, c.VolumeMounts = []corev1.EnvVar{dbPort}, []corev1.EnvFromSource{envFromCM}, []corev1.VolumeMount{cacheMount}
		}),
	}, {
		name: "every container and init container, after what they have",
		pod: podWith(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}})
			p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
		}),
		presets: []*settingsv1alpha1.PodPreset{preset("env", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{dbPort}})},
		want: podWith(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"podpreset.admission.kubernetes.io/podpreset-env": "7"}
			p.Spec.Containers[0].Env = []corev1.EnvVar{dbPort}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Env: []corev1.EnvVar{{Name: "A", Value: "1"}, dbPort}})
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{dbPort}}}
		}),
	}, {
		name: "identical values are no conflict",
		pod: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{dbPort}
			p.Spec.Volumes = []corev1.Volume{cacheVol}
		}),
		presets: []*settingsv1alpha1.PodPreset{preset("same", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{dbPort}, Volumes: []corev1.Volume{cacheVol}})},
		want: podWith(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"podpreset.admission.kubernetes.io/podpreset-same": "7"}
			p.Spec.Containers[0].Env = []corev1.EnvVar{dbPort}
			p.Spec.Volumes = []corev1.Volume{cacheVol}
		}),
	}, {
		name:     "env conflict leaves the pod alone",
		pod:      podWith(func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PORT", Value: "5432"}} }),
		presets:  []*settingsv1alpha1.PodPreset{proxy},
		conflict: "merging env for proxy has a conflict on DB_PORT",
	}, {
		name: "volume conflict",
		pod: podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}}}
		}),
		presets:  []*settingsv1alpha1.PodPreset{proxy},
		conflict: "merging volumes for proxy has a conflict on cache",
	}, {
		name: "mount path conflict",
		pod: podWith(func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "other", MountPath: "/cache"}}
		}),
		presets:  []*settingsv1alpha1.PodPreset{proxy},
		conflict: "merging volume mounts for proxy has a conflict on mount path /cache",
	}, {
		name: "two presets that disagree",
		pod:  podWith(),
		presets: []*settingsv1alpha1.PodPreset{proxy, preset("other", settingsv1alpha1.PodPresetSpec{
			Env: []corev1.EnvVar{{Name: "DB_PORT", Value: "1"}}})},
		conflict: "merging env for other has a conflict on DB_PORT",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.pod.DeepCopy()
			err := Apply(tc.pod, tc.presets)
			if tc.conflict != "" {
				if err == nil || !strings.Contains(err.Error(), tc.conflict) {
					t.Fatalf("err = %v, want %q", err, tc.conflict)
				}
				if !equality.Semantic.DeepEqual(tc.pod, before) {
					t.Fatalf("a conflict changed the pod:\n%+v", tc.pod)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(tc.pod, tc.want) {
				t.Fatalf("pod\n%+v\nwant\n%+v", tc.pod, tc.want)
			}
		})
	}
}

func TestMatching(t *testing.T) {
	b := preset("b", settingsv1alpha1.PodPresetSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}}})
	a := preset("a", settingsv1alpha1.PodPresetSpec{Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "role", Operator: metav1.LabelSelectorOpIn, Values: []string{"frontend", "api"}}}}})
	other := preset("other", settingsv1alpha1.PodPresetSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}})
	got, err := Matching([]*settingsv1alpha1.PodPreset{b, other, a}, podWith())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("matching %v, want a and b", got)
	}
}
