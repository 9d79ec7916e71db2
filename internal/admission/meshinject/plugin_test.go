package meshinject_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/admission/meshinject"
	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/printers"
	"skiff.dev/skiff/internal/testenv"
)

func TestWanted(t *testing.T) {
	enabled := map[string]string{meshconfig.InjectionLabel: "enabled"}
	disabled := map[string]string{meshconfig.InjectionLabel: "disabled"}
	pod := func(mut func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	label := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Labels = map[string]string{meshconfig.InjectAnnotation: v} }
	}
	annotation := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{meshconfig.InjectAnnotation: v} }
	}
	cases := []struct {
		name     string
		pod      *corev1.Pod
		ns       string
		nsLabels map[string]string
		want     bool
	}{
		{name: "namespace enabled", pod: pod(nil), nsLabels: enabled, want: true},
		{name: "namespace unlabelled", pod: pod(nil), want: false},
		{name: "pod label true", pod: pod(label("true")), want: true},
		{name: "pod annotation true", pod: pod(annotation("true")), want: true},
		{name: "pod label false wins over namespace", pod: pod(label("false")), nsLabels: enabled, want: false},
		{name: "pod annotation false wins over namespace", pod: pod(annotation("false")), nsLabels: enabled, want: false},
		{name: "label wins over annotation", pod: pod(func(p *corev1.Pod) {
			label("false")(p)
			annotation("true")(p)
		}), nsLabels: enabled, want: false},
		{name: "namespace disabled wins over pod", pod: pod(label("true")), nsLabels: disabled, want: false},
		{name: "host network", pod: pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), nsLabels: enabled, want: false},
		{name: "mirror pod", pod: pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		}), nsLabels: enabled, want: false},
		{name: "kube-system", pod: pod(label("true")), ns: "kube-system", nsLabels: enabled, want: false},
		{name: "kube-public", pod: pod(nil), ns: "kube-public", nsLabels: enabled, want: false},
		{name: "already injected", pod: pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{meshconfig.StatusAnnotation: "{}"}
		}), nsLabels: enabled, want: false},
		{name: "own istio-proxy container", pod: pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: meshconfig.ContainerName})
		}), nsLabels: enabled, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.ns
			if ns == "" {
				ns = "default"
			}
			if got := meshinject.Wanted(tc.pod, ns, tc.nsLabels); got != tc.want {
				t.Errorf("Wanted = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInject(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "setup"}},
		Containers:     []corev1.Container{{Name: "app"}},
	}}
	meshinject.Inject(pod)
	if got := pod.Spec.InitContainers[0]; got.Name != meshconfig.ContainerName || got.RestartPolicy == nil ||
		*got.RestartPolicy != corev1.ContainerRestartPolicyAlways || got.Image != meshconfig.Image {
		t.Fatalf("first init container %+v, want the native sidecar", got)
	}
	if len(pod.Spec.InitContainers) != 2 || pod.Spec.InitContainers[1].Name != "setup" {
		t.Errorf("init containers %v, want the sidecar before setup", pod.Spec.InitContainers)
	}
	sc := pod.Spec.InitContainers[0]
	if sc.StartupProbe == nil || sc.StartupProbe.HTTPGet == nil || sc.StartupProbe.HTTPGet.Port.IntValue() != meshconfig.HealthPort ||
		sc.ReadinessProbe == nil || sc.ReadinessProbe.HTTPGet.Path != "/healthz/ready" {
		t.Errorf("probes %+v / %+v", sc.StartupProbe, sc.ReadinessProbe)
	}
	if *sc.SecurityContext.RunAsUser != meshconfig.ProxyUID || *sc.SecurityContext.RunAsGroup != meshconfig.ProxyGID {
		t.Errorf("security context %+v", sc.SecurityContext)
	}
	if len(sc.VolumeMounts) != 1 || sc.VolumeMounts[0].MountPath != meshconfig.MountPath || sc.VolumeMounts[0].Name != meshconfig.VolumeName {
		t.Errorf("mounts %+v", sc.VolumeMounts)
	}
	if v := pod.Spec.Volumes; len(v) != 1 || v[0].Name != meshconfig.VolumeName || v[0].EmptyDir == nil {
		t.Errorf("volumes %+v", v)
	}
	var st meshinject.Status
	if err := json.Unmarshal([]byte(pod.Annotations[meshconfig.StatusAnnotation]), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.InitContainers) != 1 || st.InitContainers[0] != meshconfig.ContainerName || len(st.Volumes) != 1 {
		t.Errorf("status %+v", st)
	}
	if !meshinject.Injected(pod) {
		t.Error("Injected = false after Inject")
	}
}

// TestThroughTheAPI creates pods on a real API server: in a labelled
// namespace (created just before, so perhaps not yet in the plugin's
// cache), opted out, and opted in without the namespace label; an
// injected pod shows 0/2 in kubectl's READY column.
func TestThroughTheAPI(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "meshed", Labels: map[string]string{meshconfig.InjectionLabel: "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	} {
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(ns, name string, labels map[string]string) *corev1.Pod {
		t.Helper()
		pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pod
	}
	for _, tc := range []struct {
		ns, name string
		labels   map[string]string
		want     bool
	}{
		{"meshed", "a", nil, true},
		{"meshed", "b", map[string]string{meshconfig.InjectAnnotation: "false"}, false},
		{"plain", "c", nil, false},
		{"plain", "d", map[string]string{meshconfig.InjectAnnotation: "true"}, true},
	} {
		pod := create(tc.ns, tc.name, tc.labels)
		if got := meshinject.Injected(pod); got != tc.want {
			t.Errorf("%s/%s injected = %v, want %v", tc.ns, tc.name, got, tc.want)
		}
		if tc.want && len(pod.Spec.InitContainers) != 1 {
			t.Errorf("%s/%s init containers %v", tc.ns, tc.name, pod.Spec.InitContainers)
		}
	}

	pod, err := env.Client.CoreV1().Pods("meshed").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cells, err := printers.For(schema.GroupKind{Kind: "Pod"}).Cells(pod, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cells[1] != "0/2" {
		t.Errorf("READY %q, want 0/2", cells[1])
	}
}
