package nodelifecycle

import (
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func readyNode(status corev1.ConditionStatus, heartbeat time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.NewTime(heartbeat), LastTransitionTime: metav1.NewTime(heartbeat),
		}}},
	}
}

func lease(renew time.Time) *coordinationv1.Lease {
	rt := metav1.NewMicroTime(renew)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: nodeLeaseNamespace}, Spec: coordinationv1.LeaseSpec{RenewTime: &rt}}
}

// TestHealth steps a node through heartbeats and checks staleness: the
// controller times heartbeats by when it sees them change.
func TestHealth(t *testing.T) {
	const grace, startup = 40 * time.Second, 60 * time.Second
	type look struct {
		at    time.Duration // after t0
		node  *corev1.Node
		lease *coordinationv1.Lease
		stale bool
	}
	never := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(t0)}}
	cases := []struct {
		name  string
		looks []look
	}{
		{name: "lease renewed in time", looks: []look{
			{at: 0, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0)},
			{at: 30 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(30 * time.Second))},
			{at: 69 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(30 * time.Second))},
		}},
		{name: "lease not renewed past the grace period", looks: []look{
			{at: 0, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0)},
			{at: 41 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0), stale: true},
		}},
		{name: "lease renewed again", looks: []look{
			{at: 0, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0)},
			{at: 50 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0), stale: true},
			{at: 60 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(59 * time.Second))},
		}},
		{name: "Ready heartbeats count too", looks: []look{
			{at: 0, node: readyNode(corev1.ConditionTrue, t0)},
			{at: 30 * time.Second, node: readyNode(corev1.ConditionTrue, t0.Add(30*time.Second))},
			{at: 60 * time.Second, node: readyNode(corev1.ConditionTrue, t0.Add(30*time.Second))},
			{at: 71 * time.Second, node: readyNode(corev1.ConditionTrue, t0.Add(30*time.Second)), stale: true},
		}},
		{name: "a node that never posted status has the startup grace from its creation", looks: []look{
			{at: 50 * time.Second, node: never},
			{at: 61 * time.Second, node: never, stale: true},
		}},
		{name: "a lease alone keeps a node without status healthy", looks: []look{
			{at: 50 * time.Second, node: never, lease: lease(t0)},
			{at: 100 * time.Second, node: never, lease: lease(t0.Add(90 * time.Second))},
			{at: 170 * time.Second, node: never, lease: lease(t0.Add(90 * time.Second)), stale: true},
		}},
		{name: "a node clock behind does not matter", looks: []look{
			{at: 0, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(-time.Hour))},
			{at: 30 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(-time.Hour + 30*time.Second))},
			{at: 60 * time.Second, node: readyNode(corev1.ConditionTrue, t0), lease: lease(t0.Add(-time.Hour + 30*time.Second))},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h *health
			for i, l := range tc.looks {
				now := t0.Add(l.at)
				var period time.Duration
				h, period = observe(h, l.node, l.lease, now, grace, startup)
				if got := h.stale(now, period); got != l.stale {
					t.Errorf("look %d at +%v: stale %v, want %v", i, l.at, got, l.stale)
				}
			}
		})
	}
}

func TestMarkUnknownAndReachable(t *testing.T) {
	now := metav1.NewTime(t0)
	node := readyNode(corev1.ConditionTrue, t0.Add(-time.Minute))
	if !markUnknown(node, now) {
		t.Fatal("nothing changed")
	}
	for _, ct := range watchedConditions {
		c := condition(&node.Status, ct)
		if c == nil || c.Status != corev1.ConditionUnknown {
			t.Fatalf("%s: %+v, want Unknown", ct, c)
		}
	}
	if r := condition(&node.Status, corev1.NodeReady); r.Reason != reasonUnknown || r.Message != msgUnknown {
		t.Errorf("Ready %s %q, want upstream's %s %q", r.Reason, r.Message, reasonUnknown, msgUnknown)
	}
	if c := condition(&node.Status, corev1.NodeMemoryPressure); c.Reason != reasonNeverUpdated {
		t.Errorf("missing condition added with reason %s, want %s", c.Reason, reasonNeverUpdated)
	}
	if markUnknown(node, now) {
		t.Error("marking twice changed something")
	}

	// Renewed before the transition: no. After: Ready is True again.
	h := &health{renewed: t0.Add(-time.Second)}
	if markReachable(node, h, now) {
		t.Error("reachable from a renewal before it went Unknown")
	}
	h.renewed = t0.Add(time.Second)
	if !markReachable(node, h, metav1.NewTime(t0.Add(time.Second))) {
		t.Fatal("not reachable after a renewal")
	}
	if r := condition(&node.Status, corev1.NodeReady); r.Status != corev1.ConditionTrue || r.Reason != reasonLeaseRenewed {
		t.Errorf("Ready %+v, want True %s", r, reasonLeaseRenewed)
	}
	// An Unknown posted by the node agent itself stays.
	agent := readyNode(corev1.ConditionUnknown, t0)
	agent.Status.Conditions[0].Reason = "SomethingElse"
	if markReachable(agent, h, now) {
		t.Error("overrode a condition the agent posted")
	}
}

func TestReconcileTaints(t *testing.T) {
	now := metav1.NewTime(t0)
	earlier := metav1.NewTime(t0.Add(-time.Minute))
	user := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	unreachNoExec := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &earlier}
	unreachNoSched := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	withStatus := func(ready corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
		n := readyNode(ready, t0)
		n.Spec.Taints = taints
		return n
	}
	cases := []struct {
		name    string
		node    *corev1.Node
		want    []corev1.Taint
		changed bool
	}{
		{name: "ready node keeps the user's taints", node: withStatus(corev1.ConditionTrue, user), want: []corev1.Taint{user}},
		{name: "unknown node gets unreachable taints", node: withStatus(corev1.ConditionUnknown, user), changed: true,
			want: []corev1.Taint{user, unreachNoSched, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}}},
		{name: "existing taints keep their time", node: withStatus(corev1.ConditionUnknown, unreachNoExec, unreachNoSched),
			want: []corev1.Taint{unreachNoExec, unreachNoSched}},
		{name: "ready again: taints come off", node: withStatus(corev1.ConditionTrue, user, unreachNoExec, unreachNoSched), changed: true,
			want: []corev1.Taint{user}},
		{name: "not ready swaps unreachable for not-ready", node: withStatus(corev1.ConditionFalse, unreachNoExec, unreachNoSched), changed: true,
			want: []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}, {Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}}},
		{name: "cordoned", node: func() *corev1.Node { n := withStatus(corev1.ConditionTrue); n.Spec.Unschedulable = true; return n }(), changed: true,
			want: []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}},
		{name: "uncordoned", node: withStatus(corev1.ConditionTrue, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}), changed: true},
		{name: "memory pressure", node: func() *corev1.Node {
			n := withStatus(corev1.ConditionTrue)
			n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue})
			return n
		}(), changed: true, want: []corev1.Taint{{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule}}},
		{name: "a node without conditions gets none", node: &corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{user}}}, want: []corev1.Taint{user}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := reconcileTaints(tc.node, now)
			if changed != tc.changed || !slices.EqualFunc(got, tc.want, func(a, b corev1.Taint) bool {
				return a.MatchTaint(&b) && a.Value == b.Value && a.TimeAdded.Equal(b.TimeAdded)
			}) {
				t.Errorf("got %v changed %v, want %v changed %v", got, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestEvictAt(t *testing.T) {
	added := t0
	since := func(corev1.Taint) time.Time { return added }
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	custom := corev1.Taint{Key: "maintenance", Value: "now", Effect: corev1.TaintEffectNoExecute}
	secs := func(s int64) *int64 { return &s }
	pod := func(tols ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tols}}
	}
	cases := []struct {
		name   string
		pod    *corev1.Pod
		taints []corev1.Taint
		at     time.Duration // after the taint was added
		evict  bool
	}{
		{name: "no toleration for unreachable: the default", pod: pod(), taints: []corev1.Taint{unreachable}, at: 300 * time.Second, evict: true},
		{name: "no toleration for not-ready: the default", pod: pod(), taints: []corev1.Taint{notReady}, at: 300 * time.Second, evict: true},
		{name: "own tolerationSeconds", pod: pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(5)}), taints: []corev1.Taint{unreachable}, at: 5 * time.Second, evict: true},
		{name: "toleration without seconds: stays", pod: pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists}),
			taints: []corev1.Taint{unreachable}},
		{name: "tolerates everything (a DaemonSet-like pod)", pod: pod(corev1.Toleration{Operator: corev1.TolerationOpExists}), taints: []corev1.Taint{unreachable, custom}},
		{name: "untolerated user taint: at once", pod: pod(), taints: []corev1.Taint{custom}, at: 0, evict: true},
		{name: "the shortest wins", pod: pod(corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpEqual, Value: "now",
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(60)}), taints: []corev1.Taint{unreachable, custom}, at: 60 * time.Second, evict: true},
		{name: "negative seconds: at once", pod: pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			TolerationSeconds: secs(-1)}), taints: []corev1.Taint{unreachable}, at: 0, evict: true},
		{name: "NoSchedule taints never evict", pod: pod(), taints: []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoSchedule}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at, evict := evictAt(tc.pod, tc.taints, since, 300*time.Second)
			if evict != tc.evict || evict && !at.Equal(added.Add(tc.at)) {
				t.Errorf("evict %v at +%v, want %v at +%v", evict, at.Sub(added), tc.evict, tc.at)
			}
		})
	}
}
