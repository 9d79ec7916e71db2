package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// filterCase runs one filter for pod on the first node of nodes, with
// existing pods placed by their spec.nodeName.
type filterCase struct {
	name     string
	pod      *corev1.Pod
	nodes    []*corev1.Node
	existing []*corev1.Pod
	// namespaces holds namespace labels, for namespace selectors.
	namespaces map[string]labels.Set
	// code and reasons expected; Success has no reasons.
	code    Code
	reasons []string
}

func runFilterCases(t *testing.T, f FilterPlugin, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := NewSnapshot(tc.nodes, tc.existing)
			snap.NamespaceLabels = tc.namespaces
			state := NewCycleState(tc.pod, snap)
			if pf, ok := f.(PreFilterPlugin); ok {
				pf.PreFilter(state)
			}
			st := f.Filter(state, snap.Nodes[0])
			code, reasons := Success, []string(nil)
			if st != nil {
				code, reasons = st.Code, st.Reasons
			}
			if code != tc.code || !slices.Equal(reasons, tc.reasons) {
				t.Errorf("%s: got code %d %q, want %d %q", f.Name(), code, reasons, tc.code, tc.reasons)
			}
		})
	}
}

func TestNodeUnschedulableFilter(t *testing.T) {
	runFilterCases(t, NodeUnschedulable{}, []filterCase{
		{name: "schedulable node", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n")}},
		{name: "cordoned node", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n", cordoned)},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonUnschedulable}},
		{name: "pod tolerates the unschedulable taint",
			pod:   mkPod("p", tolerate(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)),
			nodes: []*corev1.Node{mkNode("n", cordoned)}},
		{name: "pod tolerates everything",
			pod:   mkPod("p", tolerate("", corev1.TolerationOpExists, "", "")),
			nodes: []*corev1.Node{mkNode("n", cordoned)}},
		{name: "toleration for another effect does not count",
			pod:   mkPod("p", tolerate(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute)),
			nodes: []*corev1.Node{mkNode("n", cordoned)}, code: UnschedulableAndUnresolvable, reasons: []string{ReasonUnschedulable}},
	})
}

func TestNodeNameFilter(t *testing.T) {
	runFilterCases(t, NodeName{}, []filterCase{
		{name: "no node name", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n")}},
		{name: "this node", pod: mkPod("p", on("n")), nodes: []*corev1.Node{mkNode("n")}},
		{name: "another node", pod: mkPod("p", on("m")), nodes: []*corev1.Node{mkNode("n")},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonNodeName}},
	})
}

func TestTaintTolerationFilter(t *testing.T) {
	noSchedule := mkNode("n", taint("dedicated", "gpu", corev1.TaintEffectNoSchedule))
	untolerated := []string{ReasonUntoleratedTaint}
	runFilterCases(t, TaintToleration{}, []filterCase{
		{name: "no taints", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n")}},
		{name: "NoSchedule not tolerated", pod: mkPod("p"), nodes: []*corev1.Node{noSchedule},
			code: UnschedulableAndUnresolvable, reasons: untolerated},
		{name: "NoExecute not tolerated", pod: mkPod("p"),
			nodes: []*corev1.Node{mkNode("n", taint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoExecute))},
			code:  UnschedulableAndUnresolvable, reasons: untolerated},
		{name: "PreferNoSchedule is only a score", pod: mkPod("p"),
			nodes: []*corev1.Node{mkNode("n", taint("dedicated", "gpu", corev1.TaintEffectPreferNoSchedule))}},
		{name: "Equal with the value", pod: mkPod("p", tolerate("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoSchedule)),
			nodes: []*corev1.Node{noSchedule}},
		{name: "no operator means Equal", pod: mkPod("p", tolerate("dedicated", "", "gpu", corev1.TaintEffectNoSchedule)),
			nodes: []*corev1.Node{noSchedule}},
		{name: "Equal with another value", pod: mkPod("p", tolerate("dedicated", corev1.TolerationOpEqual, "web", corev1.TaintEffectNoSchedule)),
			nodes: []*corev1.Node{noSchedule}, code: UnschedulableAndUnresolvable, reasons: untolerated},
		{name: "Exists on the key", pod: mkPod("p", tolerate("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule)),
			nodes: []*corev1.Node{noSchedule}},
		{name: "empty effect tolerates every effect", pod: mkPod("p", tolerate("dedicated", corev1.TolerationOpExists, "", "")),
			nodes: []*corev1.Node{noSchedule}},
		{name: "toleration for another effect", pod: mkPod("p", tolerate("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute)),
			nodes: []*corev1.Node{noSchedule}, code: UnschedulableAndUnresolvable, reasons: untolerated},
		{name: "one of two taints tolerated",
			pod:   mkPod("p", tolerate("dedicated", corev1.TolerationOpExists, "", "")),
			nodes: []*corev1.Node{mkNode("n", taint("dedicated", "gpu", corev1.TaintEffectNoSchedule), taint("zone", "x", corev1.TaintEffectNoExecute))},
			code:  UnschedulableAndUnresolvable, reasons: untolerated},
	})
}

func TestNodeAffinityFilter(t *testing.T) {
	ssd := mkNode("n", nodeLabels("disk", "ssd", "zone", "a"))
	mismatch := []string{ReasonNodeAffinity}
	runFilterCases(t, NodeAffinity{}, []filterCase{
		{name: "nothing asked", pod: mkPod("p"), nodes: []*corev1.Node{ssd}},
		{name: "nodeSelector matches", pod: mkPod("p", nodeSelector("disk", "ssd")), nodes: []*corev1.Node{ssd}},
		{name: "nodeSelector does not match", pod: mkPod("p", nodeSelector("disk", "hdd")), nodes: []*corev1.Node{ssd},
			code: UnschedulableAndUnresolvable, reasons: mismatch},
		{name: "nodeSelector label missing", pod: mkPod("p", nodeSelector("gpu", "true")), nodes: []*corev1.Node{ssd},
			code: UnschedulableAndUnresolvable, reasons: mismatch},
		{name: "required In", pod: mkPod("p", requiredNode("zone", corev1.NodeSelectorOpIn, "a", "b")), nodes: []*corev1.Node{ssd}},
		{name: "required NotIn", pod: mkPod("p", requiredNode("zone", corev1.NodeSelectorOpNotIn, "a")), nodes: []*corev1.Node{ssd},
			code: UnschedulableAndUnresolvable, reasons: mismatch},
		{name: "required DoesNotExist", pod: mkPod("p", requiredNode("gpu", corev1.NodeSelectorOpDoesNotExist)), nodes: []*corev1.Node{ssd}},
		{name: "terms are ORed",
			pod:   mkPod("p", requiredNode("zone", corev1.NodeSelectorOpIn, "x"), requiredNode("disk", corev1.NodeSelectorOpExists)),
			nodes: []*corev1.Node{ssd}},
		{name: "nodeSelector and affinity both apply",
			pod:   mkPod("p", nodeSelector("disk", "hdd"), requiredNode("zone", corev1.NodeSelectorOpIn, "a")),
			nodes: []*corev1.Node{ssd}, code: UnschedulableAndUnresolvable, reasons: mismatch},
		{name: "matchFields on the node name",
			pod: mkPod("p", func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"other"}}}}},
				}}}
			}),
			nodes: []*corev1.Node{ssd}, code: UnschedulableAndUnresolvable, reasons: mismatch},
	})
}

func TestNodePortsFilter(t *testing.T) {
	busy := mkPod("busy", on("n"), hostPort(8080, corev1.ProtocolTCP, ""))
	busyOnIP := mkPod("busy-ip", on("n"), hostPort(9090, corev1.ProtocolTCP, "10.0.0.1"))
	n := []*corev1.Node{mkNode("n")}
	taken := []string{ReasonNodePorts}
	runFilterCases(t, NodePorts{}, []filterCase{
		{name: "no host port", pod: mkPod("p"), nodes: n, existing: []*corev1.Pod{busy}},
		{name: "free port", pod: mkPod("p", hostPort(8081, "", "")), nodes: n, existing: []*corev1.Pod{busy}},
		{name: "port taken", pod: mkPod("p", hostPort(8080, "", "")), nodes: n, existing: []*corev1.Pod{busy},
			code: Unschedulable, reasons: taken},
		{name: "same port, other protocol", pod: mkPod("p", hostPort(8080, corev1.ProtocolUDP, "")), nodes: n, existing: []*corev1.Pod{busy}},
		{name: "taken on all IPs, asked on one", pod: mkPod("p", hostPort(8080, "", "10.0.0.2")), nodes: n, existing: []*corev1.Pod{busy},
			code: Unschedulable, reasons: taken},
		{name: "taken on one IP, asked on another", pod: mkPod("p", hostPort(9090, "", "10.0.0.2")), nodes: n, existing: []*corev1.Pod{busyOnIP}},
		{name: "taken on one IP, asked on all", pod: mkPod("p", hostPort(9090, "", "")), nodes: n, existing: []*corev1.Pod{busyOnIP},
			code: Unschedulable, reasons: taken},
	})
}

func TestNodeResourcesFitFilter(t *testing.T) {
	n := []*corev1.Node{mkNode("n")} // 4 CPU, 8Gi, 110 pods
	half := mkPod("half", on("n"), requests("cpu", "2", "memory", "4Gi"))
	runFilterCases(t, NodeResourcesFit{}, []filterCase{
		{name: "fits an empty node", pod: mkPod("p", requests("cpu", "4", "memory", "8Gi")), nodes: n},
		{name: "fits beside another pod", pod: mkPod("p", requests("cpu", "2", "memory", "4Gi")), nodes: n, existing: []*corev1.Pod{half}},
		{name: "not enough CPU", pod: mkPod("p", requests("cpu", "2500m")), nodes: n, existing: []*corev1.Pod{half},
			code: Unschedulable, reasons: []string{"Insufficient cpu"}},
		{name: "not enough CPU nor memory", pod: mkPod("p", requests("cpu", "3", "memory", "5Gi")), nodes: n, existing: []*corev1.Pod{half},
			code: Unschedulable, reasons: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "more than the node has", pod: mkPod("p", requests("memory", "9Gi")), nodes: n,
			code: Unschedulable, reasons: []string{"Insufficient memory"}},
		{name: "no requests fit a full node", pod: mkPod("p"), nodes: n,
			existing: []*corev1.Pod{mkPod("full", on("n"), requests("cpu", "4", "memory", "8Gi"))}},
		{name: "pods allocatable reached", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n", allocatable("cpu", "4", "memory", "8Gi", "pods", "1"))},
			existing: []*corev1.Pod{mkPod("one", on("n"))}, code: Unschedulable, reasons: []string{ReasonTooManyPods}},
		{name: "node without a pods allocatable", pod: mkPod("p"), nodes: []*corev1.Node{mkNode("n", allocatable("cpu", "4"))},
			code: Unschedulable, reasons: []string{ReasonTooManyPods}},
		{name: "too many pods and not enough CPU", pod: mkPod("p", requests("cpu", "3")),
			nodes: []*corev1.Node{mkNode("n", allocatable("cpu", "4", "memory", "8Gi", "pods", "1"))}, existing: []*corev1.Pod{half},
			code: Unschedulable, reasons: []string{ReasonTooManyPods, "Insufficient cpu"}},
		{name: "ephemeral storage", pod: mkPod("p", requests("ephemeral-storage", "2Gi")),
			nodes: []*corev1.Node{mkNode("n", allocatable("cpu", "4", "ephemeral-storage", "1Gi", "pods", "10"))},
			code:  Unschedulable, reasons: []string{"Insufficient ephemeral-storage"}},
		{name: "extended resource missing", pod: mkPod("p", requests("example.com/gpu", "1")), nodes: n,
			code: Unschedulable, reasons: []string{"Insufficient example.com/gpu"}},
		{name: "extended resource present", pod: mkPod("p", requests("example.com/gpu", "1")),
			nodes: []*corev1.Node{mkNode("n", allocatable("cpu", "4", "example.com/gpu", "2", "pods", "10"))}},
		{name: "an init container asks more than the containers", pod: mkPod("p", requests("cpu", "1"), initRequests("cpu", "3")),
			nodes: n, existing: []*corev1.Pod{half}, code: Unschedulable, reasons: []string{"Insufficient cpu"}},
		{name: "overhead counts", pod: mkPod("p", requests("cpu", "2"), func(p *corev1.Pod) {
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("500m")}
		}), nodes: n, existing: []*corev1.Pod{half}, code: Unschedulable, reasons: []string{"Insufficient cpu"}},
	})
}

func TestInterPodAffinityFilter(t *testing.T) {
	zoneA1 := mkNode("a1", nodeLabels("zone", "a"))
	zoneA2 := mkNode("a2", nodeLabels("zone", "a"))
	zoneB := mkNode("b1", nodeLabels("zone", "b"))
	noZone := mkNode("x")
	db := mkPod("db", on("a2"), podLabels("app", "db"))
	cache := mkPod("cache", on("a1"), podLabels("app", "cache"))
	lonerOnA2 := mkPod("loner", on("a2"), podLabels("app", "other"), podAntiAffinity(podTerm("zone", "app", "web")))
	runFilterCases(t, InterPodAffinity{}, []filterCase{
		{name: "no affinity", pod: mkPod("web", podLabels("app", "web")), nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{db}},
		{name: "affinity met in the zone", pod: mkPod("web", podAffinity(podTerm("zone", "app", "db"))),
			nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{db}},
		{name: "affinity not met in another zone", pod: mkPod("web", podAffinity(podTerm("zone", "app", "db"))),
			nodes: []*corev1.Node{zoneB, zoneA2}, existing: []*corev1.Pod{db},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonAffinityRules}},
		{name: "affinity on hostname", pod: mkPod("web", podAffinity(podTerm(corev1.LabelHostname, "app", "db"))),
			nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{db},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonAffinityRules}},
		{name: "node without the topology key", pod: mkPod("web", podAffinity(podTerm("zone", "app", "db"))),
			nodes: []*corev1.Node{noZone, zoneA2}, existing: []*corev1.Pod{db},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonAffinityRules}},
		{name: "first pod of a group with affinity to itself",
			pod:   mkPod("web", podLabels("app", "web"), podAffinity(podTerm("zone", "app", "web"))),
			nodes: []*corev1.Node{zoneB, zoneA2}, existing: []*corev1.Pod{db}},
		{name: "affinity in another namespace is not met", pod: mkPod("web", inNS("other"), podAffinity(podTerm("zone", "app", "db"))),
			nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{db},
			code: UnschedulableAndUnresolvable, reasons: []string{ReasonAffinityRules}},
		{name: "affinity through a namespace selector",
			pod: mkPod("web", inNS("other"), podAffinity(func() corev1.PodAffinityTerm {
				t := podTerm("zone", "app", "db")
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "data"}}
				return t
			}())),
			nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{db},
			namespaces: map[string]labels.Set{"default": {"team": "data"}, "other": {}}},
		{name: "anti-affinity with a pod in the zone", pod: mkPod("web", podAntiAffinity(podTerm("zone", "app", "cache"))),
			nodes: []*corev1.Node{zoneA2, zoneA1}, existing: []*corev1.Pod{cache},
			code: Unschedulable, reasons: []string{ReasonAntiAffinityRules}},
		{name: "anti-affinity with a pod in another zone", pod: mkPod("web", podAntiAffinity(podTerm("zone", "app", "cache"))),
			nodes: []*corev1.Node{zoneB, zoneA1}, existing: []*corev1.Pod{cache}},
		{name: "anti-affinity on hostname with a pod on another node",
			pod:   mkPod("web", podAntiAffinity(podTerm(corev1.LabelHostname, "app", "cache"))),
			nodes: []*corev1.Node{zoneA2, zoneA1}, existing: []*corev1.Pod{cache}},
		{name: "an existing pod's anti-affinity", pod: mkPod("web", podLabels("app", "web")),
			nodes: []*corev1.Node{zoneA1, zoneA2}, existing: []*corev1.Pod{lonerOnA2},
			code: Unschedulable, reasons: []string{ReasonExistingAntiAffinityRules}},
		{name: "an existing pod's anti-affinity elsewhere", pod: mkPod("web", podLabels("app", "web")),
			nodes: []*corev1.Node{zoneB, zoneA2}, existing: []*corev1.Pod{lonerOnA2}},
		{name: "matchLabelKeys takes the pod's own value",
			pod: mkPod("web", podLabels("app", "web", "rev", "2"), podAntiAffinity(func() corev1.PodAffinityTerm {
				t := podTerm(corev1.LabelHostname, "app", "web")
				t.MatchLabelKeys = []string{"rev"}
				return t
			}())),
			nodes:    []*corev1.Node{zoneA1},
			existing: []*corev1.Pod{mkPod("web-old", on("a1"), podLabels("app", "web", "rev", "1"))}},
	})
}

func TestPodTopologySpreadFilter(t *testing.T) {
	a1, a2 := mkNode("a1", nodeLabels("zone", "a")), mkNode("a2", nodeLabels("zone", "a"))
	b1, bare := mkNode("b1", nodeLabels("zone", "b")), mkNode("x")
	web := func(name, node string) *corev1.Pod { return mkPod(name, on(node), podLabels("app", "web")) }
	twoInA := []*corev1.Pod{web("w1", "a1"), web("w2", "a2")}
	hard := func(edit func(*corev1.TopologySpreadConstraint)) podOpt {
		return spreadOn("zone", 1, corev1.DoNotSchedule, edit, "app", "web")
	}
	skewed := []string{ReasonTopologySpread}
	runFilterCases(t, PodTopologySpread{}, []filterCase{
		{name: "no constraints", pod: mkPod("p", podLabels("app", "web")), nodes: []*corev1.Node{a1, b1}, existing: twoInA},
		{name: "the fuller zone exceeds maxSkew", pod: mkPod("p", podLabels("app", "web"), hard(nil)),
			nodes: []*corev1.Node{a1, a2, b1}, existing: twoInA, code: Unschedulable, reasons: skewed},
		{name: "the emptier zone", pod: mkPod("p", podLabels("app", "web"), hard(nil)),
			nodes: []*corev1.Node{b1, a1, a2}, existing: twoInA},
		{name: "node without the topology key", pod: mkPod("p", podLabels("app", "web"), hard(nil)),
			nodes: []*corev1.Node{bare, b1}, code: UnschedulableAndUnresolvable, reasons: []string{ReasonTopologySpreadMissingLabel}},
		{name: "a pod its own selector does not match", pod: mkPod("p", hard(nil)),
			nodes: []*corev1.Node{a1, b1}, existing: []*corev1.Pod{web("w1", "a1")}},
		{name: "minDomains counts missing domains as empty",
			pod:   mkPod("p", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.MinDomains = new(int32(3)) })),
			nodes: []*corev1.Node{a1, b1}, existing: []*corev1.Pod{web("w1", "a1"), web("w2", "b1")}, code: Unschedulable, reasons: skewed},
		{name: "domains outside the node selector do not count",
			pod:   mkPod("p", podLabels("app", "web"), nodeSelector("zone", "a"), hard(nil)),
			nodes: []*corev1.Node{a1, a2, b1}, existing: twoInA},
		{name: "unless the node affinity policy is Ignore",
			pod: mkPod("p", podLabels("app", "web"), nodeSelector("zone", "a"), hard(func(c *corev1.TopologySpreadConstraint) {
				ignore := corev1.NodeInclusionPolicyIgnore
				c.NodeAffinityPolicy = &ignore
			})),
			nodes: []*corev1.Node{a1, a2, b1}, existing: twoInA, code: Unschedulable, reasons: skewed},
		{name: "pods in other namespaces do not count", pod: mkPod("p", inNS("other"), podLabels("app", "web"), hard(nil)),
			nodes: []*corev1.Node{a1, a2, b1}, existing: twoInA},
		{name: "ScheduleAnyway does not filter", pod: mkPod("p", podLabels("app", "web"), spreadOn("zone", 1, corev1.ScheduleAnyway, nil, "app", "web")),
			nodes: []*corev1.Node{a1, a2, b1}, existing: twoInA},
	})
}
