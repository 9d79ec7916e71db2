package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodChanged(t *testing.T) {
	base := func() *corev1.Pod {
		return &corev1.Pod{
			Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}},
		}
	}
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   bool
	}{
		{"nothing", func(*corev1.Pod) {}, false},
		{"condition", func(p *corev1.Pod) { p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady}} }, false},
		{"container status", func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c"}} }, false},
		{"label", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "c"} }, true},
		{"address", func(p *corev1.Pod) { p.Status.PodIPs = nil }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		{"node", func(p *corev1.Pod) { p.Spec.NodeName = "m" }, true},
		{"port", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 81 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, c := base(), base()
			tc.mutate(c)
			if got := podChanged(o, c); got != tc.want {
				t.Errorf("podChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
