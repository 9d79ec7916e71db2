package scheduler

import (
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// ReasonNodeAffinity is upstream's reason for a node the pod's nodeSelector
// or required node affinity rules out.
const ReasonNodeAffinity = "node(s) didn't match Pod's node affinity/selector"

// NodeAffinity keeps pods on nodes matching their nodeSelector and
// required node affinity, and scores nodes by the weights of the preferred
// node affinity terms they match.
type NodeAffinity struct{}

// Name implements Plugin.
func (NodeAffinity) Name() string { return "NodeAffinity" }

type nodeAffinityState struct {
	required  nodeaffinity.RequiredNodeAffinity
	preferred *nodeaffinity.PreferredSchedulingTerms
}

const nodeAffinityKey = "NodeAffinity"

// PreFilter implements PreFilterPlugin.
func (NodeAffinity) PreFilter(state *CycleState) {
	pod := state.Pod.Pod
	s := &nodeAffinityState{required: nodeaffinity.GetRequiredNodeAffinity(pod)}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		// Invalid terms were refused by validation; a nil result scores 0.
		s.preferred, _ = nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	state.write(nodeAffinityKey, s)
}

func nodeAffinityOf(state *CycleState) *nodeAffinityState {
	if s, ok := state.read(nodeAffinityKey).(*nodeAffinityState); ok {
		return s
	}
	NodeAffinity{}.PreFilter(state)
	return state.read(nodeAffinityKey).(*nodeAffinityState)
}

// Filter implements FilterPlugin.
func (NodeAffinity) Filter(state *CycleState, n *NodeInfo) *Status {
	ok, err := nodeAffinityOf(state).required.Match(n.Node)
	if err != nil || !ok {
		return unresolvable(ReasonNodeAffinity)
	}
	return nil
}

// Score implements ScorePlugin.
func (NodeAffinity) Score(state *CycleState, n *NodeInfo) int64 {
	if p := nodeAffinityOf(state).preferred; p != nil {
		return p.Score(n.Node)
	}
	return 0
}

// Normalize implements ScorePlugin.
func (NodeAffinity) Normalize(scores []int64) { defaultNormalize(scores, false) }
