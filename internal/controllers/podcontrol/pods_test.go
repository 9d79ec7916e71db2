package podcontrol_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// pod builds a test pod; opts adjust it.
func pod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func readySince(d time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady,
			Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-d))})
	}
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func node(n string) func(*corev1.Pod)            { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func created(ago time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-ago)) }
}
func cost(c string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{podcontrol.DeletionCostAnnotation: c} }
}
func restarts(n int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

func TestSortForDeletion(t *testing.T) {
	cases := []struct {
		name    string
		first   *corev1.Pod // should go first
		second  *corev1.Pod
		related []*corev1.Pod // nil: the two pods
	}{
		{name: "unscheduled before scheduled",
			first: pod("a", node(""), readySince(time.Hour)), second: pod("b", phase(corev1.PodPending))},
		{name: "pending before running",
			first: pod("a", phase(corev1.PodPending)), second: pod("b")},
		{name: "unknown before running",
			first: pod("a", phase(corev1.PodUnknown)), second: pod("b")},
		{name: "pending before unknown",
			first: pod("a", phase(corev1.PodPending)), second: pod("b", phase(corev1.PodUnknown))},
		{name: "not ready before ready",
			first: pod("a"), second: pod("b", readySince(time.Second))},
		{name: "lower deletion cost first",
			first: pod("a", readySince(time.Hour), cost("-5")), second: pod("b", readySince(time.Second))},
		{name: "more co-located pods first",
			first: pod("a", readySince(time.Second), node("busy")), second: pod("b", readySince(time.Second)),
			related: []*corev1.Pod{pod("x", node("busy")), pod("y", node("busy"))}},
		{name: "ready for less time first",
			first: pod("a", readySince(time.Minute)), second: pod("b", readySince(time.Hour))},
		{name: "more restarts first",
			first: pod("a", restarts(3)), second: pod("b", restarts(1))},
		{name: "younger first",
			first: pod("a", created(time.Minute)), second: pod("b", created(time.Hour))},
		{name: "same log2 age bucket goes by uid",
			first: pod("a", created(70*time.Second)), second: pod("b", created(80*time.Second))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]*corev1.Pod{{tc.first, tc.second}, {tc.second, tc.first}} {
				related := tc.related
				if related == nil {
					related = order
				}
				pods := append([]*corev1.Pod(nil), order...)
				podcontrol.SortForDeletion(pods, append(related, pods...), now)
				if pods[0] != tc.first {
					t.Errorf("from %s,%s: sorted %s first, want %s", order[0].Name, order[1].Name, pods[0].Name, tc.first.Name)
				}
			}
		})
	}
}

func TestAvailability(t *testing.T) {
	cases := []struct {
		name     string
		pod      *corev1.Pod
		minReady int32
		want     bool
	}{
		{name: "not ready", pod: pod("a"), want: false},
		{name: "ready, no minReadySeconds", pod: pod("a", readySince(0)), want: true},
		{name: "ready too briefly", pod: pod("a", readySince(5*time.Second)), minReady: 10, want: false},
		{name: "ready long enough", pod: pod("a", readySince(11*time.Second)), minReady: 10, want: true},
		{name: "ready exactly minReadySeconds", pod: pod("a", readySince(10*time.Second)), minReady: 10, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := podcontrol.IsAvailable(tc.pod, tc.minReady, now); got != tc.want {
				t.Errorf("IsAvailable = %v, want %v", got, tc.want)
			}
		})
	}
	if podcontrol.IsActive(pod("done", phase(corev1.PodSucceeded))) {
		t.Error("a succeeded pod is active")
	}
	deleting := pod("deleting")
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	if podcontrol.IsActive(deleting) {
		t.Error("a pod being deleted is active")
	}
}
