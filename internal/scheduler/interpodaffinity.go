package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// Upstream's inter-pod affinity reasons.
const (
	ReasonAffinityRules             = "node(s) didn't match pod affinity rules"
	ReasonAntiAffinityRules         = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinityRules = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// hardPodAffinityWeight is the score an existing pod's required affinity
// term gives the nodes in its topology when it matches the incoming pod.
const hardPodAffinityWeight = 1

// InterPodAffinity places pods by the pods already running: required
// affinity (some matching pod in the node's topology domain), required
// anti-affinity (none), the anti-affinity of pods already placed, and
// scores by preferred terms of both.
type InterPodAffinity struct{}

// Name implements Plugin.
func (InterPodAffinity) Name() string { return "InterPodAffinity" }

type topologyPair struct{ key, value string }

type topologyCounts map[topologyPair]int64

type interPodState struct {
	// existingAnti counts existing pods whose required anti-affinity
	// matches the incoming pod, by their topology domain.
	existingAnti topologyCounts
	// affinity counts existing pods matching all of the incoming pod's
	// required affinity terms; anti those matching one of its required
	// anti-affinity terms.
	affinity, anti topologyCounts
	// score sums preferred weights by topology key and value.
	score map[string]map[string]int64
}

const interPodKey = "InterPodAffinity"

// PreFilter implements PreFilterPlugin.
func (InterPodAffinity) PreFilter(state *CycleState) {
	s := &interPodState{existingAnti: topologyCounts{}, affinity: topologyCounts{}, anti: topologyCounts{}}
	pod := state.Pod
	snap := state.Snapshot
	podNS := snap.nsLabels(pod.Pod.Namespace)
	for _, n := range snap.Nodes {
		for _, existing := range n.PodsWithRequiredAntiAffinity {
			for i := range existing.RequiredAntiAffinity {
				t := &existing.RequiredAntiAffinity[i]
				if t.Matches(pod.Pod, podNS) {
					s.existingAnti.add(n.Node, t.TopologyKey, 1)
				}
			}
		}
		if len(pod.RequiredAffinity) == 0 && len(pod.RequiredAntiAffinity) == 0 {
			continue
		}
		for _, existing := range n.Pods {
			ns := snap.nsLabels(existing.Pod.Namespace)
			if matchesAll(pod.RequiredAffinity, existing.Pod, ns) {
				for _, t := range pod.RequiredAffinity {
					s.affinity.add(n.Node, t.TopologyKey, 1)
				}
			}
			for i := range pod.RequiredAntiAffinity {
				t := &pod.RequiredAntiAffinity[i]
				if t.Matches(existing.Pod, ns) {
					s.anti.add(n.Node, t.TopologyKey, 1)
				}
			}
		}
	}
	state.write(interPodKey, s)
}

func (c topologyCounts) add(node *corev1.Node, key string, v int64) {
	if value, ok := node.Labels[key]; ok {
		c[topologyPair{key, value}] += v
	}
}

func matchesAll(terms []AffinityTerm, pod *corev1.Pod, nsLabels map[string]string) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].Matches(pod, nsLabels) {
			return false
		}
	}
	return true
}

func interPodOf(state *CycleState) *interPodState {
	if s, ok := state.read(interPodKey).(*interPodState); ok {
		return s
	}
	InterPodAffinity{}.PreFilter(state)
	return state.read(interPodKey).(*interPodState)
}

// Filter implements FilterPlugin.
func (InterPodAffinity) Filter(state *CycleState, n *NodeInfo) *Status {
	s := interPodOf(state)
	pod := state.Pod
	if len(pod.RequiredAffinity) > 0 && !satisfiesAffinity(s, pod, n.Node, state.Snapshot) {
		return unresolvable(ReasonAffinityRules)
	}
	for _, t := range pod.RequiredAntiAffinity {
		if v, ok := n.Node.Labels[t.TopologyKey]; ok && s.anti[topologyPair{t.TopologyKey, v}] > 0 {
			return unschedulable(ReasonAntiAffinityRules)
		}
	}
	if len(s.existingAnti) > 0 {
		for k, v := range n.Node.Labels {
			if s.existingAnti[topologyPair{k, v}] > 0 {
				return unschedulable(ReasonExistingAntiAffinityRules)
			}
		}
	}
	return nil
}

// satisfiesAffinity: every required term finds a matching pod in the
// node's domain (the node must have every topology key). A pod that would
// be the first of a group with affinity to itself may go anywhere with the
// keys, as upstream allows.
func satisfiesAffinity(s *interPodState, pod *PodInfo, node *corev1.Node, snap *Snapshot) bool {
	found := true
	for _, t := range pod.RequiredAffinity {
		v, ok := node.Labels[t.TopologyKey]
		if !ok {
			return false
		}
		if s.affinity[topologyPair{t.TopologyKey, v}] <= 0 {
			found = false
		}
	}
	if found {
		return true
	}
	return len(s.affinity) == 0 && matchesAll(pod.RequiredAffinity, pod.Pod, snap.nsLabels(pod.Pod.Namespace))
}

// PreScore implements PreScorePlugin: it sums, over every pod placed, the
// weights of preferred terms (the incoming pod's on the placed pod, the
// placed pod's on the incoming one; anti-affinity subtracts) and of placed
// pods' required affinity terms matching the incoming pod, by topology.
func (InterPodAffinity) PreScore(state *CycleState, _ []*NodeInfo) {
	s := interPodOf(state)
	s.score = map[string]map[string]int64{}
	pod := state.Pod
	snap := state.Snapshot
	podNS := snap.nsLabels(pod.Pod.Namespace)
	hasPreferred := len(pod.PreferredAffinity)+len(pod.PreferredAntiAffinity) > 0
	add := func(node *corev1.Node, key string, w int64) {
		v, ok := node.Labels[key]
		if !ok || w == 0 {
			return
		}
		if s.score[key] == nil {
			s.score[key] = map[string]int64{}
		}
		s.score[key][v] += w
	}
	for _, n := range snap.Nodes {
		pods := n.PodsWithAffinity
		if hasPreferred {
			pods = n.Pods
		}
		for _, existing := range pods {
			ns := snap.nsLabels(existing.Pod.Namespace)
			for i := range pod.PreferredAffinity {
				if t := &pod.PreferredAffinity[i]; t.Matches(existing.Pod, ns) {
					add(n.Node, t.TopologyKey, int64(t.Weight))
				}
			}
			for i := range pod.PreferredAntiAffinity {
				if t := &pod.PreferredAntiAffinity[i]; t.Matches(existing.Pod, ns) {
					add(n.Node, t.TopologyKey, -int64(t.Weight))
				}
			}
			for i := range existing.RequiredAffinity {
				if t := &existing.RequiredAffinity[i]; t.Matches(pod.Pod, podNS) {
					add(n.Node, t.TopologyKey, hardPodAffinityWeight)
				}
			}
			for i := range existing.PreferredAffinity {
				if t := &existing.PreferredAffinity[i]; t.Matches(pod.Pod, podNS) {
					add(n.Node, t.TopologyKey, int64(t.Weight))
				}
			}
			for i := range existing.PreferredAntiAffinity {
				if t := &existing.PreferredAntiAffinity[i]; t.Matches(pod.Pod, podNS) {
					add(n.Node, t.TopologyKey, -int64(t.Weight))
				}
			}
		}
	}
}

// Score implements ScorePlugin.
func (InterPodAffinity) Score(state *CycleState, n *NodeInfo) int64 {
	var total int64
	for key, values := range interPodOf(state).score {
		if v, ok := n.Node.Labels[key]; ok {
			total += values[v]
		}
	}
	return total
}

// Normalize implements ScorePlugin: min-max scaling to 0..100.
func (InterPodAffinity) Normalize(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi > lo {
			scores[i] = (s - lo) * MaxNodeScore / (hi - lo)
		} else {
			scores[i] = 0
		}
	}
}
