package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// OwnerSpread spreads the replicas of one controller (ReplicaSet,
// StatefulSet, Job, ...) across nodes and, where nodes carry the
// topology.kubernetes.io/zone label, across zones: a node scores higher the
// fewer pods of the pod's controller it (and its zone) already runs. This
// is the scoring of upstream's default topology spreading for pods without
// spread constraints, keyed by controller instead of by selector. Pods
// without a controller, and pods with topologySpreadConstraints of their
// own (PodTopologySpread's), score 0 everywhere.
type OwnerSpread struct{}

// Name implements Plugin.
func (OwnerSpread) Name() string { return "OwnerSpread" }

// zoneWeighting is the share of the score that comes from the zone, as in
// upstream's selector spreading.
const zoneWeighting = 2.0 / 3.0

type spreadState struct {
	byNode           map[string]int64
	byZone           map[string]int64
	maxNode, maxZone int64
}

const spreadKey = "OwnerSpread"

// PreScore implements PreScorePlugin: it counts the controller's pods on
// each feasible node and in each zone.
func (OwnerSpread) PreScore(state *CycleState, feasible []*NodeInfo) {
	s := &spreadState{byNode: map[string]int64{}, byZone: map[string]int64{}}
	state.write(spreadKey, s)
	owner := controllerUID(state.Pod.Pod)
	if owner == "" || len(state.Pod.Pod.Spec.TopologySpreadConstraints) > 0 {
		return
	}
	ns := state.Pod.Pod.Namespace
	for _, n := range feasible {
		var count int64
		for _, p := range n.Pods {
			if p.Pod.Namespace == ns && p.Pod.DeletionTimestamp == nil && controllerUID(p.Pod) == owner {
				count++
			}
		}
		s.byNode[n.Node.Name] = count
		s.maxNode = max(s.maxNode, count)
		if zone := zoneOf(n.Node); zone != "" {
			s.byZone[zone] += count
		}
	}
	for _, c := range s.byZone {
		s.maxZone = max(s.maxZone, c)
	}
}

// Score implements ScorePlugin; the score is already in 0..100.
func (OwnerSpread) Score(state *CycleState, n *NodeInfo) int64 {
	s, ok := state.read(spreadKey).(*spreadState)
	if !ok || controllerUID(state.Pod.Pod) == "" || len(state.Pod.Pod.Spec.TopologySpreadConstraints) > 0 {
		return 0
	}
	score := float64(MaxNodeScore)
	if s.maxNode > 0 {
		score = float64(MaxNodeScore) * float64(s.maxNode-s.byNode[n.Node.Name]) / float64(s.maxNode)
	}
	if len(s.byZone) > 0 {
		zoneScore := float64(MaxNodeScore)
		if zone := zoneOf(n.Node); zone != "" && s.maxZone > 0 {
			zoneScore = float64(MaxNodeScore) * float64(s.maxZone-s.byZone[zone]) / float64(s.maxZone)
		}
		score = score*(1-zoneWeighting) + zoneScore*zoneWeighting
	}
	return int64(math.Round(score))
}

// Normalize implements ScorePlugin.
func (OwnerSpread) Normalize(scores []int64) { noNormalize(scores) }

func controllerUID(pod *corev1.Pod) types.UID {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		return ref.UID
	}
	return ""
}

func zoneOf(node *corev1.Node) string {
	return node.Labels[corev1.LabelTopologyZone]
}
