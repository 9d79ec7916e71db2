package disruption

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type podOpt func(*corev1.Pod)

func ready(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
}
func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }
func ownedBy(kind, name, uid string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}}
	}
}

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func minAvailable(v intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns", Generation: 3},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &v}}
}

func maxUnavailable(v intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns", Generation: 3},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &v}}
}

// scales is a fake controller lookup: uid → scale.
func scales(m map[string]int32) scaleOf {
	return func(ref *metav1.OwnerReference, _ string) (types.UID, int32, bool, error) {
		if ref.Kind == "DaemonSet" {
			return "", 0, false, errors.New("daemonsets.apps does not implement the scale subresource")
		}
		s, ok := m[string(ref.UID)]
		return ref.UID, s, ok, nil
	}
}

func TestStatus(t *testing.T) {
	rs := ownedBy("ReplicaSet", "web", "rs1")
	cases := []struct {
		name      string
		pdb       *policyv1.PodDisruptionBudget
		pods      []*corev1.Pod
		scales    map[string]int32
		want      string // expected/desired/healthy/allowed
		unmanaged int
		err       string
	}{
		{name: "min available int", pdb: minAvailable(intstr.FromInt32(2)),
			pods: []*corev1.Pod{mkPod("a", ready), mkPod("b", ready), mkPod("c", ready)}, want: "3/2/3/1"},
		{name: "min available int, one unready", pdb: minAvailable(intstr.FromInt32(2)),
			pods: []*corev1.Pod{mkPod("a", ready), mkPod("b", ready), mkPod("c")}, want: "3/2/2/0"},
		{name: "min available int, one deleting", pdb: minAvailable(intstr.FromInt32(2)),
			pods: []*corev1.Pod{mkPod("a", ready), mkPod("b", ready, deleting), mkPod("c", ready)}, want: "3/2/2/0"},
		{name: "min available int counts unmanaged pods", pdb: minAvailable(intstr.FromInt32(1)),
			pods: []*corev1.Pod{mkPod("a", ready), mkPod("b", ready)}, want: "2/1/2/1"},
		{name: "min available percent scales with the controller", pdb: minAvailable(intstr.FromString("50%")),
			pods: []*corev1.Pod{mkPod("a", ready, rs), mkPod("b", ready, rs)}, scales: map[string]int32{"rs1": 5},
			want: "5/3/2/0"},
		{name: "max unavailable int", pdb: maxUnavailable(intstr.FromInt32(1)),
			pods: []*corev1.Pod{mkPod("a", ready, rs), mkPod("b", ready, rs), mkPod("c", ready, rs)}, scales: map[string]int32{"rs1": 3},
			want: "3/2/3/1"},
		{name: "max unavailable percent rounds up", pdb: maxUnavailable(intstr.FromString("30%")),
			pods: []*corev1.Pod{mkPod("a", ready, rs), mkPod("b", ready, rs), mkPod("c", ready, rs), mkPod("d", ready, rs)}, scales: map[string]int32{"rs1": 4},
			want: "4/2/4/2"},
		{name: "max unavailable over scale", pdb: maxUnavailable(intstr.FromInt32(10)),
			pods: []*corev1.Pod{mkPod("a", ready, rs)}, scales: map[string]int32{"rs1": 1}, want: "1/0/1/1"},
		{name: "two controllers add up", pdb: maxUnavailable(intstr.FromInt32(1)),
			pods:   []*corev1.Pod{mkPod("a", ready, rs), mkPod("b", ready, ownedBy("StatefulSet", "db", "ss1"))},
			scales: map[string]int32{"rs1": 1, "ss1": 2}, want: "3/2/2/0"},
		{name: "no pods allow nothing", pdb: minAvailable(intstr.FromInt32(0)), want: "0/0/0/0"},
		{name: "unmanaged pods with a percentage", pdb: minAvailable(intstr.FromString("50%")),
			pods: []*corev1.Pod{mkPod("a", ready, rs), mkPod("b", ready)}, scales: map[string]int32{"rs1": 2},
			want: "2/1/2/1", unmanaged: 1},
		{name: "controller not found", pdb: maxUnavailable(intstr.FromInt32(1)),
			pods: []*corev1.Pod{mkPod("a", ready, rs)}, err: `found no controllers for pod "a"`},
		{name: "controller without scale", pdb: maxUnavailable(intstr.FromInt32(1)),
			pods: []*corev1.Pod{mkPod("a", ready, ownedBy("DaemonSet", "ds", "ds1"))}, err: "does not implement the scale subresource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expected, desired, unmanaged, err := expectedPods(tc.pdb, tc.pods, scales(tc.scales))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(unmanaged) != tc.unmanaged {
				t.Errorf("unmanaged %v", unmanaged)
			}
			healthy := countHealthy(tc.pods, nil, now, DeletionTimeout)
			st := newStatus(tc.pdb, healthy, desired, expected, nil)
			got := strings.Join([]string{itoa(st.ExpectedPods), itoa(st.DesiredHealthy), itoa(st.CurrentHealthy), itoa(st.DisruptionsAllowed)}, "/")
			if got != tc.want {
				t.Errorf("expected/desired/healthy/allowed %s, want %s", got, tc.want)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d", st.ObservedGeneration)
			}
			cond := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			wantReason := policyv1.InsufficientPodsReason
			if st.DisruptionsAllowed > 0 {
				wantReason = policyv1.SufficientPodsReason
			}
			if cond == nil || cond.Reason != wantReason {
				t.Errorf("condition %+v, want reason %s", cond, wantReason)
			}
			next := tc.pdb.DeepCopy()
			next.Status = st
			if !upToDate(next, st) || upToDate(tc.pdb, st) {
				t.Error("upToDate is wrong")
			}
		})
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestDisruptedPods(t *testing.T) {
	pdb := minAvailable(intstr.FromInt32(1))
	recent := metav1.NewTime(now.Add(-30 * time.Second))
	old := metav1.NewTime(now.Add(-3 * time.Minute))
	pdb.Status.DisruptedPods = map[string]metav1.Time{"recent": recent, "old": old, "gone": recent, "deleting": recent}
	pods := []*corev1.Pod{mkPod("recent", ready), mkPod("old", ready), mkPod("deleting", ready, deleting), mkPod("other", ready)}
	kept, expired, recheck := pruneDisrupted(pdb, pods, now, DeletionTimeout)
	if k, ok := kept["recent"]; len(kept) != 1 || !ok || !k.Equal(&recent) {
		t.Errorf("kept %v, want only recent", kept)
	}
	if len(expired) != 1 || expired[0].Name != "old" {
		t.Errorf("expired %v, want old", expired)
	}
	if want := recent.Add(DeletionTimeout); recheck == nil || !recheck.Equal(want) {
		t.Errorf("recheck %v, want %v", recheck, want)
	}
	// The recently evicted pod does not count as healthy; the one whose
	// eviction timed out does again.
	if h := countHealthy(pods, kept, now, DeletionTimeout); h != 2 {
		t.Errorf("healthy %d, want 2 (old and other)", h)
	}
	if _, _, recheck := pruneDisrupted(minAvailable(intstr.FromInt32(1)), pods, now, DeletionTimeout); recheck != nil {
		t.Error("recheck without disrupted pods")
	}
}
