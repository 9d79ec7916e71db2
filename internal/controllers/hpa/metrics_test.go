package hpa

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
)

func TestAPIMetrics(t *testing.T) {
	usage := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	podMetrics := func(name, app string, containers ...metricsv1beta1.ContainerMetrics) *metricsv1beta1.PodMetrics {
		return &metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": app}},
			Timestamp:  metav1.NewTime(now), Window: metav1.Duration{Duration: 30 * time.Second},
			Containers: containers,
		}
	}
	client := metricsfake.NewSimpleClientset()
	// The API's resource is "pods", which the fake cannot guess from the kind.
	gvr := metricsv1beta1.SchemeGroupVersion.WithResource("pods")
	for _, pm := range []*metricsv1beta1.PodMetrics{
		podMetrics("a", "web", metricsv1beta1.ContainerMetrics{Name: "app", Usage: usage("200m", "1Mi")}, metricsv1beta1.ContainerMetrics{Name: "proxy", Usage: usage("50m", "1Mi")}),
		podMetrics("b", "web", metricsv1beta1.ContainerMetrics{Name: "app", Usage: usage("300m", "")}),
		podMetrics("c", "db", metricsv1beta1.ContainerMetrics{Name: "app", Usage: usage("900m", "1Mi")}),
	} {
		if err := client.Tracker().Create(gvr, pm, pm.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMetricsClient(client)
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	cases := []struct {
		name      string
		res       corev1.ResourceName
		container string
		want      map[string]int64
	}{
		{"cpu summed over containers", corev1.ResourceCPU, "", map[string]int64{"a": 250, "b": 300}},
		{"one container", corev1.ResourceCPU, "proxy", map[string]int64{"a": 50}},
		{"a pod lacking the resource has no sample", corev1.ResourceMemory, "", map[string]int64{"a": 2 * 1024 * 1024 * 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ts, err := m.PodUsage(t.Context(), tc.res, "ns", web, tc.container)
			if err != nil {
				t.Fatal(err)
			}
			values := map[string]int64{}
			for name, s := range got {
				values[name] = s.Value
				if !s.Timestamp.Equal(now) || s.Window != 30*time.Second {
					t.Errorf("%s: sample at %v over %v", name, s.Timestamp, s.Window)
				}
			}
			if !maps.Equal(values, tc.want) || !ts.Equal(now) {
				t.Errorf("got %v at %v, want %v", values, ts, tc.want)
			}
		})
	}
	if _, _, err := m.PodUsage(t.Context(), corev1.ResourceCPU, "ns", labels.SelectorFromSet(labels.Set{"app": "none"}), ""); err == nil {
		t.Error("no pod metrics: want an error")
	}
}
