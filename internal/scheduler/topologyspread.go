package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Upstream's topology spread reasons.
const (
	ReasonTopologySpread             = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadMissingLabel = ReasonTopologySpread + " (missing required label)"
)

// PodTopologySpread honours the pod's topologySpreadConstraints: with
// DoNotSchedule, a node is rejected when placing the pod there would make
// the number of matching pods in its domain exceed the least populated
// domain's by more than maxSkew (minDomains counts missing domains as
// empty); with ScheduleAnyway, nodes in less populated domains score
// higher. Pods without constraints are left to OwnerSpread, as upstream
// leaves them to its default constraints.
type PodTopologySpread struct{}

// Name implements Plugin.
func (PodTopologySpread) Name() string { return "PodTopologySpread" }

type spreadConstraint struct {
	key      string
	maxSkew  int32
	minDoms  int32
	selector labels.Selector
	hard     bool
	// selfMatch is 1 when the incoming pod matches its own selector.
	selfMatch int64
	// counts holds matching pods by domain (every eligible domain present).
	counts map[string]int64
}

type topologySpreadState struct {
	constraints []*spreadConstraint
	// included reports whether a node counts, by the node inclusion
	// policies (node affinity honoured, taints ignored by default).
	included func(*corev1.Node) bool
}

const topologySpreadKey = "PodTopologySpread"

// PreFilter implements PreFilterPlugin: it counts the matching pods in
// every domain of every constraint.
func (PodTopologySpread) PreFilter(state *CycleState) {
	pod := state.Pod.Pod
	s := &topologySpreadState{}
	state.write(topologySpreadKey, s)
	if len(pod.Spec.TopologySpreadConstraints) == 0 {
		return
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	for _, c := range pod.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			sel = labels.Nothing()
		}
		for _, key := range c.MatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				if r, err := labels.NewRequirement(key, selection.In, []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
		sc := &spreadConstraint{key: c.TopologyKey, maxSkew: c.MaxSkew, selector: sel, hard: c.WhenUnsatisfiable == corev1.DoNotSchedule, counts: map[string]int64{}}
		if c.MinDomains != nil {
			sc.minDoms = *c.MinDomains
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		honourAffinity := c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor
		honourTaints := c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor
		sc.counts = countDomains(state.Snapshot, pod, sc, func(n *corev1.Node) bool {
			if honourAffinity {
				if ok, err := required.Match(n); err != nil || !ok {
					return false
				}
			}
			return !honourTaints || TaintToleration{}.Filter(state, &NodeInfo{Node: n}) == nil
		})
		s.constraints = append(s.constraints, sc)
	}
}

// countDomains counts, on the nodes that have the constraint's key and are
// included, the pods in pod's namespace matching the selector.
func countDomains(snap *Snapshot, pod *corev1.Pod, sc *spreadConstraint, included func(*corev1.Node) bool) map[string]int64 {
	counts := map[string]int64{}
	for _, n := range snap.Nodes {
		v, ok := n.Node.Labels[sc.key]
		if !ok || !included(n.Node) {
			continue
		}
		counts[v] += 0
		for _, p := range n.Pods {
			if p.Pod.Namespace == pod.Namespace && p.Pod.DeletionTimestamp == nil && sc.selector.Matches(labels.Set(p.Pod.Labels)) {
				counts[v]++
			}
		}
	}
	return counts
}

func topologySpreadOf(state *CycleState) *topologySpreadState {
	if s, ok := state.read(topologySpreadKey).(*topologySpreadState); ok {
		return s
	}
	PodTopologySpread{}.PreFilter(state)
	return state.read(topologySpreadKey).(*topologySpreadState)
}

// minMatch is the count of the least populated domain, 0 when there are
// fewer domains than minDomains.
func (sc *spreadConstraint) minMatch() int64 {
	if int32(len(sc.counts)) < sc.minDoms {
		return 0
	}
	lo := int64(math.MaxInt64)
	for _, c := range sc.counts {
		lo = min(lo, c)
	}
	if lo == math.MaxInt64 {
		return 0
	}
	return lo
}

// Filter implements FilterPlugin for the DoNotSchedule constraints.
func (PodTopologySpread) Filter(state *CycleState, n *NodeInfo) *Status {
	for _, sc := range topologySpreadOf(state).constraints {
		if !sc.hard {
			continue
		}
		v, ok := n.Node.Labels[sc.key]
		if !ok {
			return unresolvable(ReasonTopologySpreadMissingLabel)
		}
		if sc.counts[v]+sc.selfMatch-sc.minMatch() > int64(sc.maxSkew) {
			return unschedulable(ReasonTopologySpread)
		}
	}
	return nil
}

// Score implements ScorePlugin for the ScheduleAnyway constraints: the
// matching pods in the node's domains, each constraint weighted by the
// log of its number of domains (as upstream). -1 marks a node lacking a
// key.
func (PodTopologySpread) Score(state *CycleState, n *NodeInfo) int64 {
	var score float64
	for _, sc := range topologySpreadOf(state).constraints {
		if sc.hard {
			continue
		}
		v, ok := n.Node.Labels[sc.key]
		if !ok {
			return -1
		}
		score += float64(sc.counts[v]+int64(sc.maxSkew)-1) * math.Log(float64(len(sc.counts)+2))
	}
	return int64(math.Round(score))
}

// Normalize implements ScorePlugin: the fewest matching pods scores 100;
// nodes lacking a key score 0.
func (PodTopologySpread) Normalize(scores []int64) {
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, s := range scores {
		if s >= 0 {
			lo, hi = min(lo, s), max(hi, s)
		}
	}
	for i, s := range scores {
		switch {
		case s < 0:
			scores[i] = 0
		case hi == lo:
			scores[i] = MaxNodeScore
		default:
			scores[i] = MaxNodeScore * (hi - s) / (hi - lo)
		}
	}
}
