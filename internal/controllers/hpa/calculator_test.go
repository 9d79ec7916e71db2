package hpa

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testPod is a pod requesting 1 CPU and 1Gi, Running and Ready since an
// hour ago unless changed by opts.
func testPod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	long := metav1.NewTime(now.Add(-time.Hour))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		}}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			StartTime:  &long,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: long}},
		},
	}
	for _, o := range opts {
		o(pod)
	}
	return pod
}

// neverReady: started an hour ago and not Ready since then.
func neverReady(p *corev1.Pod) {
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	p.Status.Conditions[0].LastTransitionTime = *p.Status.StartTime
}

func pending(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions[0].Status = corev1.ConditionFalse
}
func failed(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }
func deleting(p *corev1.Pod) {
	t := metav1.NewTime(now)
	p.DeletionTimestamp = &t
}

// justReady: started a minute ago, Ready for 10 s: its CPU sample covers
// time before it was Ready.
func justReady(p *corev1.Pod) {
	start := metav1.NewTime(now.Add(-time.Minute))
	p.Status.StartTime = &start
	p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-10 * time.Second))
}

func noCPURequest(p *corev1.Pod) { delete(p.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU) }

func withSidecar(p *corev1.Pod) {
	p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}
}

// samples are milli-unit usages by pod name, sampled now over 30 s.
func samples(values map[string]int64) PodMetricsInfo {
	out := PodMetricsInfo{}
	for name, v := range values {
		out[name] = PodMetric{Timestamp: now, Window: 30 * time.Second, Value: v}
	}
	return out
}

func testCalculator() calculator {
	return calculator{tolerances: tolerances{0.1, 0.1}, cpuInitialization: 5 * time.Minute, readinessDelay: 30 * time.Second, now: now}
}

func TestUtilizationReplicas(t *testing.T) {
	cases := []struct {
		name    string
		current int32
		target  int32 // percent of request
		res     corev1.ResourceName
		pods    []*corev1.Pod
		usage   map[string]int64
		tol     *tolerances
		want    int32
		// wantUtilization is the reported utilization (percent).
		wantUtilization int32
		wantErr         string
	}{
		{
			name: "scale up", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")},
			usage: map[string]int64{"a": 900, "b": 800, "c": 700},
			want:  5, wantUtilization: 80,
		},
		{
			name: "scale down", current: 4, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d")},
			usage: map[string]int64{"a": 100, "b": 100, "c": 100, "d": 100},
			want:  1, wantUtilization: 10,
		},
		{
			name: "within tolerance", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")},
			usage: map[string]int64{"a": 540, "b": 540, "c": 540},
			want:  3, wantUtilization: 54,
		},
		{
			name: "just beyond tolerance", current: 4, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d")},
			usage: map[string]int64{"a": 560, "b": 560, "c": 560, "d": 560},
			want:  5, wantUtilization: 56,
		},
		{
			name: "a behavior's tolerance", current: 3, target: 50, tol: &tolerances{down: 0.1, up: 0.5},
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")},
			usage: map[string]int64{"a": 700, "b": 700, "c": 700},
			want:  3, wantUtilization: 70,
		},
		{
			name: "missing samples count as idle when scaling up", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")},
			usage: map[string]int64{"a": 900, "b": 900},
			want:  4, wantUtilization: 90,
		},
		{
			name: "missing samples count as their request when scaling down", current: 4, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d")},
			usage: map[string]int64{"a": 100, "b": 100, "c": 100},
			want:  3, wantUtilization: 10,
		},
		{
			name: "missing samples that reverse the direction keep the count", current: 2, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b")},
			usage: map[string]int64{"a": 600},
			want:  2, wantUtilization: 60,
		},
		{
			name: "unready pods count as idle when scaling up", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c", neverReady)},
			usage: map[string]int64{"a": 900, "b": 900, "c": 900},
			want:  4, wantUtilization: 90,
		},
		{
			name: "unready pods are left out when scaling down", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c", neverReady)},
			usage: map[string]int64{"a": 100, "b": 100, "c": 900},
			want:  1, wantUtilization: 10,
		},
		{
			name: "pending pods are unready", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c", pending)},
			usage: map[string]int64{"a": 900, "b": 900},
			want:  4, wantUtilization: 90,
		},
		{
			// Trusted, c's start-up spike would ask for 8 pods.
			name: "a CPU sample from before the pod was Ready is distrusted", current: 3, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c", justReady)},
			usage: map[string]int64{"a": 900, "b": 900, "c": 2000},
			want:  4, wantUtilization: 90,
		},
		{
			name: "memory samples do not depend on readiness", current: 2, target: 50, res: corev1.ResourceMemory,
			pods:  []*corev1.Pod{testPod("a"), testPod("b", neverReady)},
			usage: map[string]int64{"a": 1 << 30 * 900, "b": 1 << 30 * 900},
			want:  4, wantUtilization: 90,
		},
		{
			name: "failed and deleted pods are ignored", current: 5, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d", failed), testPod("e", deleting)},
			usage: map[string]int64{"a": 100, "b": 100, "c": 100, "d": 900, "e": 900},
			want:  1, wantUtilization: 10,
		},
		{
			name: "sidecars' requests count", current: 2, target: 50,
			pods:  []*corev1.Pod{testPod("a", withSidecar), testPod("b", withSidecar)},
			usage: map[string]int64{"a": 1000, "b": 1000},
			want:  2, wantUtilization: 50,
		},
		{
			name: "samples of other pods do not count", current: 2, target: 50,
			pods:  []*corev1.Pod{testPod("a"), testPod("b")},
			usage: map[string]int64{"a": 500, "b": 500, "stranger": 10000},
			want:  2, wantUtilization: 50,
		},
		{
			name: "a container without a request", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a"), testPod("b", noCPURequest)},
			usage:   map[string]int64{"a": 500, "b": 500},
			wantErr: "missing request for cpu",
		},
		{
			name: "no pods", current: 2, target: 50,
			wantErr: "no pods returned by selector",
		},
		{
			name: "no samples of ready pods", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a", pending), testPod("b", neverReady)},
			usage:   map[string]int64{"b": 500},
			wantErr: "did not receive metrics for targeted pods",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCalculator()
			if tc.tol != nil {
				c.tolerances = *tc.tol
			}
			res := tc.res
			if res == "" {
				res = corev1.ResourceCPU
			}
			got, utilization, _, err := c.utilizationReplicas(tc.current, tc.target, tc.pods, samples(tc.usage), res, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || utilization != tc.wantUtilization {
				t.Errorf("got %d replicas at %d%%, want %d at %d%%", got, utilization, tc.want, tc.wantUtilization)
			}
		})
	}
}

func TestAverageValueReplicas(t *testing.T) {
	cases := []struct {
		name    string
		current int32
		target  int64 // milli-units per pod
		pods    []*corev1.Pod
		usage   map[string]int64
		want    int32
	}{
		{"scale up", 3, 100, []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")}, map[string]int64{"a": 300, "b": 300, "c": 300}, 9},
		{"within tolerance", 3, 100, []*corev1.Pod{testPod("a"), testPod("b"), testPod("c")}, map[string]int64{"a": 105, "b": 105, "c": 105}, 3},
		{"scale down", 4, 100, []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d")}, map[string]int64{"a": 20, "b": 20, "c": 20, "d": 20}, 1},
		{"missing samples count as the target when scaling down", 4, 100, []*corev1.Pod{testPod("a"), testPod("b"), testPod("c"), testPod("d")}, map[string]int64{"a": 20, "b": 20, "c": 20}, 2},
		{"unready pods count as idle when scaling up", 3, 100, []*corev1.Pod{testPod("a"), testPod("b"), testPod("c", neverReady)}, map[string]int64{"a": 300, "b": 300, "c": 300}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := testCalculator().averageValueReplicas(tc.current, tc.target, tc.pods, samples(tc.usage), corev1.ResourceCPU)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %d replicas, want %d", got, tc.want)
			}
		})
	}
}
