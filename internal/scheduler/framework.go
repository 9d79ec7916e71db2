package scheduler

import (
	"errors"
	"math"

	corev1 "k8s.io/api/core/v1"
)

// Code says whether a node can take a pod.
type Code int

const (
	// Success: the node passed the filter.
	Success Code = iota
	// Unschedulable: the node cannot take the pod now; evicting pods of
	// lower priority could change that (not enough CPU, a port in use).
	Unschedulable
	// UnschedulableAndUnresolvable: evicting pods would not help (a taint,
	// a node selector).
	UnschedulableAndUnresolvable
)

// Status is a filter's verdict on one node, with upstream's reason texts.
type Status struct {
	Code    Code
	Reasons []string
	// Plugin is the name of the filter that rejected the node.
	Plugin string
}

func unschedulable(reasons ...string) *Status {
	return &Status{Code: Unschedulable, Reasons: reasons}
}

func unresolvable(reasons ...string) *Status {
	return &Status{Code: UnschedulableAndUnresolvable, Reasons: reasons}
}

// CycleState is what one scheduling cycle knows about the pod being
// placed: the pod, the snapshot, and what plugins computed up front.
type CycleState struct {
	Pod      *PodInfo
	Snapshot *Snapshot
	data     map[string]any
}

// NewCycleState starts a cycle for pod over snap.
func NewCycleState(pod *corev1.Pod, snap *Snapshot) *CycleState {
	return &CycleState{Pod: NewPodInfo(pod), Snapshot: snap, data: map[string]any{}}
}

func (s *CycleState) write(key string, v any) { s.data[key] = v }
func (s *CycleState) read(key string) any     { return s.data[key] }

// Plugin has a name, used in logs and in statuses.
type Plugin interface {
	Name() string
}

// PreFilterPlugin computes once per cycle what its Filter needs.
type PreFilterPlugin interface {
	Plugin
	PreFilter(state *CycleState)
}

// FilterPlugin decides whether a node can take the pod. A nil status is
// success.
type FilterPlugin interface {
	Plugin
	Filter(state *CycleState, node *NodeInfo) *Status
}

// PreScorePlugin computes once per cycle, over the feasible nodes, what
// its Score needs.
type PreScorePlugin interface {
	Plugin
	PreScore(state *CycleState, feasible []*NodeInfo)
}

// ScorePlugin ranks a feasible node; Normalize then maps the scores of all
// feasible nodes (in place) to 0..MaxNodeScore.
type ScorePlugin interface {
	Plugin
	Score(state *CycleState, node *NodeInfo) int64
	Normalize(scores []int64)
}

// MaxNodeScore is the highest score a plugin gives a node.
const MaxNodeScore = 100

// WeightedScore is a score plugin with its weight in the total.
type WeightedScore struct {
	Plugin ScorePlugin
	Weight int64
}

// Profile is an ordered list of filters and weighted scores.
type Profile struct {
	Filters []FilterPlugin
	Scores  []WeightedScore
}

// DefaultProfile is kube-scheduler's default profile, in its order and
// with its weights, minus the volume and image plugins; OwnerSpread plays
// the part of the default topology spreading for pods without
// constraints of their own.
func DefaultProfile() *Profile {
	return &Profile{
		Filters: []FilterPlugin{
			NodeUnschedulable{},
			NodeName{},
			TaintToleration{},
			NodeAffinity{},
			NodePorts{},
			NodeResourcesFit{},
			PodTopologySpread{},
			InterPodAffinity{},
		},
		Scores: []WeightedScore{
			{Plugin: TaintToleration{}, Weight: 3},
			{Plugin: NodeAffinity{}, Weight: 2},
			{Plugin: InterPodAffinity{}, Weight: 2},
			{Plugin: PodTopologySpread{}, Weight: 2},
			{Plugin: OwnerSpread{}, Weight: 2},
			{Plugin: LeastAllocated{}, Weight: 1},
			{Plugin: BalancedAllocation{}, Weight: 1},
		},
	}
}

// ErrNoNodes is the scheduling error when the cluster has no nodes.
var ErrNoNodes = errors.New("no nodes available to schedule pods")

// Result is a successful placement.
type Result struct {
	// Node is the chosen node.
	Node string
	// Feasible is how many nodes passed the filters.
	Feasible int
	// Scores is the weighted total of every feasible node (nil when only
	// one node was feasible and scoring was skipped).
	Scores []NodeScore
}

// NodeScore is a node's weighted total score.
type NodeScore struct {
	Name  string
	Score int64
}

// Schedule places the pod of state on a node of its snapshot: every node
// goes through the filters in order (the first rejection counts), the
// feasible ones are scored, and the best wins; pick chooses among equal
// best (nil picks the first). It returns a *FitError when no node fits, or
// ErrNoNodes.
func (p *Profile) Schedule(state *CycleState, pick func(n int) int) (Result, error) {
	nodes := state.Snapshot.Nodes
	if len(nodes) == 0 {
		return Result{}, ErrNoNodes
	}
	for _, f := range p.Filters {
		if pf, ok := f.(PreFilterPlugin); ok {
			pf.PreFilter(state)
		}
	}
	var feasible []*NodeInfo
	statuses := map[string]*Status{}
	for _, n := range nodes {
		if st := p.filter(state, n); st != nil {
			statuses[n.Node.Name] = st
			continue
		}
		feasible = append(feasible, n)
	}
	if len(feasible) == 0 {
		return Result{}, &FitError{Pod: state.Pod.Pod, NumAllNodes: len(nodes), Statuses: statuses}
	}
	if len(feasible) == 1 {
		return Result{Node: feasible[0].Node.Name, Feasible: 1}, nil
	}
	totals := p.score(state, feasible)
	best, ties := int64(math.MinInt64), []int{}
	for i, t := range totals {
		switch {
		case t > best:
			best, ties = t, append(ties[:0], i)
		case t == best:
			ties = append(ties, i)
		}
	}
	chosen := ties[0]
	if pick != nil && len(ties) > 1 {
		chosen = ties[pick(len(ties))]
	}
	res := Result{Node: feasible[chosen].Node.Name, Feasible: len(feasible), Scores: make([]NodeScore, len(feasible))}
	for i, n := range feasible {
		res.Scores[i] = NodeScore{Name: n.Node.Name, Score: totals[i]}
	}
	return res, nil
}

// filter runs the filters on one node and returns the first rejection.
func (p *Profile) filter(state *CycleState, n *NodeInfo) *Status {
	for _, f := range p.Filters {
		if st := f.Filter(state, n); st != nil && st.Code != Success {
			st.Plugin = f.Name()
			return st
		}
	}
	return nil
}

// score returns the weighted total score of each feasible node.
func (p *Profile) score(state *CycleState, feasible []*NodeInfo) []int64 {
	totals := make([]int64, len(feasible))
	scores := make([]int64, len(feasible))
	for _, ws := range p.Scores {
		if ps, ok := ws.Plugin.(PreScorePlugin); ok {
			ps.PreScore(state, feasible)
		}
		for i, n := range feasible {
			scores[i] = ws.Plugin.Score(state, n)
		}
		ws.Plugin.Normalize(scores)
		for i := range scores {
			totals[i] += scores[i] * ws.Weight
		}
	}
	return totals
}

// defaultNormalize scales scores to 0..MaxNodeScore by the highest one;
// reverse turns the scale around (fewer is better). All zero stays zero,
// or becomes MaxNodeScore reversed.
func defaultNormalize(scores []int64, reverse bool) {
	var highest int64
	for _, s := range scores {
		highest = max(highest, s)
	}
	for i, s := range scores {
		switch {
		case highest == 0 && reverse:
			scores[i] = MaxNodeScore
		case highest == 0:
			scores[i] = 0
		case reverse:
			scores[i] = MaxNodeScore - s*MaxNodeScore/highest
		default:
			scores[i] = s * MaxNodeScore / highest
		}
	}
}

// noNormalize is for scores already in 0..MaxNodeScore.
func noNormalize([]int64) {}
