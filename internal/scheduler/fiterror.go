package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// Upstream's preemption texts.
const (
	ReasonPreemptionNotHelpful = "Preemption is not helpful for scheduling"
	ReasonNoVictims            = "No preemption victims found for incoming pod."
	msgPreemptNever            = "not eligible due to preemptionPolicy=Never."
)

// FitError says why no node can take a pod, in kube-scheduler's words:
//
//	0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..
type FitError struct {
	Pod         *corev1.Pod
	NumAllNodes int
	// Statuses holds each rejected node's status by node name.
	Statuses map[string]*Status
	// PostFilterMsg is the preemption part, "" when there is none.
	PostFilterMsg string
}

// Error is the histogram of reasons, sorted as text, then the preemption
// part.
func (f *FitError) Error() string {
	counts := map[string]int{}
	for _, st := range f.Statuses {
		for _, r := range st.Reasons {
			counts[r]++
		}
	}
	parts := make([]string, 0, len(counts))
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available:", f.NumAllNodes)
	if len(parts) > 0 {
		msg += " " + strings.Join(parts, ", ") + "."
	}
	if f.PostFilterMsg != "" {
		msg += " " + f.PostFilterMsg
	}
	return msg
}

// PreemptionMessage is the text upstream's DefaultPreemption adds when it
// finds no node where evicting pods of lower priority would make room:
// nodes rejected for unresolvable reasons are "not helpful", the others
// have "no victims". It returns "" when evicting would make room on some
// node, which upstream would then do; Skiff does not preempt yet, so the
// message then stops at the filter reasons.
func (p *Profile) PreemptionMessage(state *CycleState, fit *FitError) string {
	pod := state.Pod.Pod
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return "preemption: " + msgPreemptNever
	}
	priority := corev1helpers.PodPriority(pod)
	out := &FitError{Pod: pod, NumAllNodes: fit.NumAllNodes, Statuses: map[string]*Status{}}
	for i, n := range state.Snapshot.Nodes {
		st := fit.Statuses[n.Node.Name]
		if st == nil || st.Code == UnschedulableAndUnresolvable {
			out.Statuses[n.Node.Name] = unresolvable(ReasonPreemptionNotHelpful)
			continue
		}
		if p.fitsWithoutLowerPriority(state, i, priority) {
			return ""
		}
		out.Statuses[n.Node.Name] = unschedulable(ReasonNoVictims)
	}
	return "preemption: " + out.Error()
}

// fitsWithoutLowerPriority is the preemption dry run on node i: would the
// pod pass the filters with every pod of lower priority gone from it?
func (p *Profile) fitsWithoutLowerPriority(state *CycleState, i int, priority int32) bool {
	n := state.Snapshot.Nodes[i]
	trimmed := n.clone()
	victims := 0
	for _, pi := range n.Pods {
		if corev1helpers.PodPriority(pi.Pod) < priority {
			trimmed.RemovePod(pi.Pod.UID)
			victims++
		}
	}
	if victims == 0 {
		return false
	}
	snap := &Snapshot{Nodes: append([]*NodeInfo(nil), state.Snapshot.Nodes...), NamespaceLabels: state.Snapshot.NamespaceLabels}
	snap.Nodes[i] = trimmed
	dry := &CycleState{Pod: state.Pod, Snapshot: snap, data: map[string]any{}}
	for _, f := range p.Filters {
		if pf, ok := f.(PreFilterPlugin); ok {
			pf.PreFilter(dry)
		}
	}
	return p.filter(dry, trimmed) == nil
}
