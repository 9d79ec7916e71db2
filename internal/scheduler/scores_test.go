package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// scoreCase scores pod on every node (all taken as feasible) and compares
// the normalized scores, in node order.
type scoreCase struct {
	name     string
	pod      *corev1.Pod
	nodes    []*corev1.Node
	existing []*corev1.Pod
	want     []int64
}

func runScoreCases(t *testing.T, p ScorePlugin, cases []scoreCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := NewSnapshot(tc.nodes, tc.existing)
			state := NewCycleState(tc.pod, snap)
			if pf, ok := p.(PreFilterPlugin); ok {
				pf.PreFilter(state)
			}
			if ps, ok := p.(PreScorePlugin); ok {
				ps.PreScore(state, snap.Nodes)
			}
			got := make([]int64, len(snap.Nodes))
			for i, n := range snap.Nodes {
				got[i] = p.Score(state, n)
			}
			p.Normalize(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: scores %v, want %v", p.Name(), got, tc.want)
			}
		})
	}
}

func TestTaintTolerationScore(t *testing.T) {
	prefer := func(k string) nodeOpt { return taint(k, "x", corev1.TaintEffectPreferNoSchedule) }
	nodes := []*corev1.Node{mkNode("clean"), mkNode("one", prefer("a")), mkNode("two", prefer("a"), prefer("b"))}
	runScoreCases(t, TaintToleration{}, []scoreCase{
		{name: "fewer PreferNoSchedule taints score higher", pod: mkPod("p"), nodes: nodes, want: []int64{100, 50, 0}},
		{name: "tolerated taints do not count",
			pod: mkPod("p", tolerate("a", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule)), nodes: nodes, want: []int64{100, 100, 0}},
		{name: "a NoSchedule toleration does not count for PreferNoSchedule",
			pod: mkPod("p", tolerate("a", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)), nodes: nodes, want: []int64{100, 50, 0}},
		{name: "no PreferNoSchedule taints anywhere", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("a"), mkNode("b")}, want: []int64{100, 100}},
	})
}

func TestNodeAffinityScore(t *testing.T) {
	nodes := []*corev1.Node{mkNode("a", nodeLabels("zone", "a")), mkNode("b", nodeLabels("disk", "ssd")), mkNode("c")}
	runScoreCases(t, NodeAffinity{}, []scoreCase{
		{name: "weights of matching terms", pod: mkPod("p", preferredNode(10, "zone", "a"), preferredNode(5, "disk", "ssd")), nodes: nodes, want: []int64{100, 50, 0}},
		{name: "terms add up", pod: mkPod("p", preferredNode(10, "zone", "a"), preferredNode(30, "zone", "a", "b")), nodes: nodes, want: []int64{100, 0, 0}},
		{name: "no preferences", pod: mkPod("p"), nodes: nodes, want: []int64{0, 0, 0}},
	})
}

func TestLeastAllocatedScore(t *testing.T) {
	nodes := []*corev1.Node{mkNode("empty"), mkNode("half"), mkNode("small", allocatable("cpu", "1", "memory", "1Gi", "pods", "10"))}
	existing := []*corev1.Pod{mkPod("x", on("half"), requests("cpu", "2", "memory", "4Gi"))}
	runScoreCases(t, LeastAllocated{}, []scoreCase{
		{name: "free share after the pod", pod: mkPod("p", requests("cpu", "1", "memory", "2Gi")), nodes: nodes, existing: existing,
			want: []int64{75, 25, 0}},
		{name: "a pod without requests counts 100m and 200Mi", pod: mkPod("p"), nodes: nodes, existing: existing,
			want: []int64{97, 47, 85}},
	})
}

func TestBalancedAllocationScore(t *testing.T) {
	nodes := []*corev1.Node{mkNode("empty"), mkNode("cpu-heavy")}
	existing := []*corev1.Pod{mkPod("x", on("cpu-heavy"), requests("cpu", "1"))}
	runScoreCases(t, BalancedAllocation{}, []scoreCase{
		{name: "CPU and memory used in equal shares score highest", pod: mkPod("p", requests("cpu", "1", "memory", "4Gi")), nodes: nodes, existing: existing,
			want: []int64{87, 100}},
		{name: "a pod without requests is not scored", pod: mkPod("p"), nodes: nodes, existing: existing, want: []int64{0, 0}},
	})
}

func TestInterPodAffinityScore(t *testing.T) {
	nodes := []*corev1.Node{mkNode("a1", nodeLabels("zone", "a")), mkNode("a2", nodeLabels("zone", "a")), mkNode("b1", nodeLabels("zone", "b"))}
	db := mkPod("db", on("a1"), podLabels("app", "db"))
	runScoreCases(t, InterPodAffinity{}, []scoreCase{
		{name: "preferred affinity favours the zone with the pod", pod: mkPod("web", preferredPodAffinity(10, podTerm("zone", "app", "db"))),
			nodes: nodes, existing: []*corev1.Pod{db}, want: []int64{100, 100, 0}},
		{name: "preferred anti-affinity avoids it", pod: mkPod("web", preferredPodAntiAffinity(10, podTerm("zone", "app", "db"))),
			nodes: nodes, existing: []*corev1.Pod{db}, want: []int64{0, 0, 100}},
		{name: "preferred affinity on hostname", pod: mkPod("web", preferredPodAffinity(10, podTerm(corev1.LabelHostname, "app", "db"))),
			nodes: nodes, existing: []*corev1.Pod{db}, want: []int64{100, 0, 0}},
		{name: "an existing pod's preferred affinity to the incoming pod",
			pod:   mkPod("web", podLabels("app", "web")),
			nodes: nodes, existing: []*corev1.Pod{mkPod("db", on("b1"), podLabels("app", "db"), preferredPodAffinity(5, podTerm("zone", "app", "web")))},
			want: []int64{0, 0, 100}},
		{name: "an existing pod's required affinity counts as weight 1",
			pod:   mkPod("web", podLabels("app", "web")),
			nodes: nodes, existing: []*corev1.Pod{mkPod("db", on("a2"), podLabels("app", "db"), podAffinity(podTerm("zone", "app", "web")))},
			want: []int64{100, 100, 0}},
		{name: "nothing preferred", pod: mkPod("web"), nodes: nodes, existing: []*corev1.Pod{db}, want: []int64{0, 0, 0}},
	})
}

func TestOwnerSpreadScore(t *testing.T) {
	replica := func(name, node string) *corev1.Pod { return mkPod(name, on(node), ownedBy("rs1")) }
	existing := []*corev1.Pod{replica("r1", "n1"), replica("r2", "n1"), replica("r3", "n2"), mkPod("other", on("n3"), ownedBy("rs2"))}
	flat := []*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	zoned := []*corev1.Node{mkNode("n1", nodeLabels(corev1.LabelTopologyZone, "a")), mkNode("n2", nodeLabels(corev1.LabelTopologyZone, "a")),
		mkNode("n3", nodeLabels(corev1.LabelTopologyZone, "b"))}
	runScoreCases(t, OwnerSpread{}, []scoreCase{
		{name: "fewer replicas on the node score higher", pod: mkPod("r4", ownedBy("rs1")), nodes: flat, existing: existing, want: []int64{0, 50, 100}},
		{name: "zones weigh two thirds", pod: mkPod("r4", ownedBy("rs1")), nodes: zoned, existing: existing, want: []int64{0, 17, 100}},
		{name: "first replica", pod: mkPod("s1", ownedBy("rs3")), nodes: flat, existing: existing, want: []int64{100, 100, 100}},
		{name: "a pod without a controller", pod: mkPod("bare"), nodes: flat, existing: existing, want: []int64{0, 0, 0}},
		{name: "replicas in another namespace do not count", pod: mkPod("r4", inNS("other"), ownedBy("rs1")), nodes: flat, existing: existing,
			want: []int64{100, 100, 100}},
	})
}

func TestPodTopologySpreadScore(t *testing.T) {
	nodes := []*corev1.Node{mkNode("a1", nodeLabels("zone", "a")), mkNode("b1", nodeLabels("zone", "b")), mkNode("x")}
	existing := []*corev1.Pod{mkPod("w1", on("a1"), podLabels("app", "web")), mkPod("w2", on("a1"), podLabels("app", "web"))}
	runScoreCases(t, PodTopologySpread{}, []scoreCase{
		{name: "the emptier domain scores higher, a node without the key lowest",
			pod: mkPod("p", podLabels("app", "web"), spreadOn("zone", 1, corev1.ScheduleAnyway, nil, "app", "web")), nodes: nodes, existing: existing,
			want: []int64{0, 100, 0}},
		{name: "no soft constraints", pod: mkPod("p"), nodes: nodes, existing: existing, want: []int64{100, 100, 100}},
	})
}
