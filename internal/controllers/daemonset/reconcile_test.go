package daemonset

import (
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// pod on node at hash ("new" is current), ready or not, made age ago.
func pod(name, node, hash string, ready bool, age time.Duration) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{HashLabel: hash}, CreationTimestamp: metav1.NewTime(now.Add(-age))},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))},
		}},
	}
}

func testReconciler(surge, unavailable int32, pods ...*corev1.Pod) *reconciler {
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxSurge: ptr.To(intstr.FromInt32(surge)), MaxUnavailable: ptr.To(intstr.FromInt32(unavailable)),
		},
	}}}
	r := &reconciler{Controller: &Controller{logr: logr.Discard(), failed: &backoff{initial: time.Second, max: time.Minute, byKey: map[string]backoffEntry{}}},
		ds: ds, key: "ns/ds", hash: "new", now: now, byNode: map[string][]*corev1.Pod{}}
	for _, n := range []string{"n1", "n2", "n3"} {
		r.nodes = append(r.nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	for _, p := range pods {
		r.byNode[p.Spec.NodeName] = append(r.byNode[p.Spec.NodeName], p)
	}
	for _, list := range r.byNode {
		slices.SortFunc(list, byAge)
	}
	return r
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func TestRollingUpdateSteps(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name               string
		surge, unavailable int32
		pods               []*corev1.Pod
		wantCreate         []string
		wantDelete         []string
	}{
		{"unavailable 1: one old pod goes", 0, 1,
			[]*corev1.Pod{pod("o1", "n1", "old", true, h), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			nil, []string{"o1"}},
		{"unavailable 1: wait for the new pod", 0, 1,
			[]*corev1.Pod{pod("x1", "n1", "new", false, 0), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			nil, nil},
		{"unavailable 1: an unavailable old pod is replaced at once", 0, 1,
			[]*corev1.Pod{pod("x1", "n1", "new", false, 0), pod("o2", "n2", "old", false, h), pod("o3", "n3", "old", true, h)},
			nil, []string{"o2"}},
		{"surge 1: one new pod beside an old one", 1, 0,
			[]*corev1.Pod{pod("o1", "n1", "old", true, h), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			[]string{"n1"}, nil},
		{"surge 1: wait while the new pod is not available", 1, 0,
			[]*corev1.Pod{pod("o1", "n1", "old", true, h), pod("x1", "n1", "new", false, 0), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			nil, nil},
		{"surge 1: the new pod is available: the old goes, the next surges", 1, 0,
			[]*corev1.Pod{pod("o1", "n1", "old", true, h), pod("x1", "n1", "new", true, 0), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			[]string{"n2"}, []string{"o1"}},
		{"surge 1: an unavailable old pod gets its replacement beyond the surge", 1, 0,
			[]*corev1.Pod{pod("o1", "n1", "old", false, h), pod("o2", "n2", "old", true, h), pod("o3", "n3", "old", true, h)},
			[]string{"n1", "n2"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			create, del := testReconciler(tc.surge, tc.unavailable, tc.pods...).rollingUpdate()
			slices.Sort(create)
			if !slices.Equal(create, tc.wantCreate) || !slices.Equal(names(del), tc.wantDelete) {
				t.Errorf("create %v delete %v, want create %v delete %v", create, names(del), tc.wantCreate, tc.wantDelete)
			}
		})
	}
}

func TestManage(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name       string
		surge      int32
		pods       []*corev1.Pod
		wantCreate []string
		wantDelete []string
	}{
		{"a pod per node", 0, nil, []string{"n1", "n2", "n3"}, nil},
		{"the younger of two goes", 0,
			[]*corev1.Pod{pod("a", "n1", "new", true, h), pod("b", "n1", "new", true, 0), pod("c", "n2", "new", true, h), pod("d", "n3", "new", true, h)},
			nil, []string{"b"}},
		{"pods on a vanished node go", 0,
			[]*corev1.Pod{pod("a", "n1", "new", true, h), pod("c", "n2", "new", true, h), pod("d", "n3", "new", true, h), pod("e", "gone", "new", true, h)},
			nil, []string{"e"}},
		{"surging: an old pod goes once the new one is available", 1,
			[]*corev1.Pod{pod("a", "n1", "old", true, h), pod("b", "n1", "new", true, 0), pod("c", "n2", "new", true, h), pod("d", "n3", "new", true, h)},
			nil, []string{"a"}},
		{"surging: both stay while the new one is not ready", 1,
			[]*corev1.Pod{pod("a", "n1", "old", true, h), pod("b", "n1", "new", false, 0), pod("c", "n2", "new", true, h), pod("d", "n3", "new", true, h)},
			nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			unavailable := int32(1)
			if tc.surge > 0 {
				unavailable = 0
			}
			create, del := testReconciler(tc.surge, unavailable, tc.pods...).manage()
			slices.Sort(create)
			if !slices.Equal(create, tc.wantCreate) || !slices.Equal(names(del), tc.wantDelete) {
				t.Errorf("create %v delete %v, want create %v delete %v", create, names(del), tc.wantCreate, tc.wantDelete)
			}
		})
	}
}
