package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// Upstream's reasons. Since Kubernetes 1.35 (and 1.34.2) the taint reason
// no longer names the taint's key and value, which may be confidential.
const (
	ReasonUntoleratedTaint = "node(s) had untolerated taint(s)"
	ReasonUnschedulable    = "node(s) were unschedulable"
	ReasonNodeName         = "node(s) didn't match the requested node name"
)

// TaintToleration keeps pods off nodes with NoSchedule and NoExecute
// taints they do not tolerate, and scores nodes by the PreferNoSchedule
// taints the pod does not tolerate (fewer is better).
type TaintToleration struct{}

// Name implements Plugin.
func (TaintToleration) Name() string { return "TaintToleration" }

// Filter implements FilterPlugin.
func (TaintToleration) Filter(state *CycleState, n *NodeInfo) *Status {
	tols := state.Pod.Pod.Spec.Tolerations
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !Tolerates(tols, t) {
			return unresolvable(ReasonUntoleratedTaint)
		}
	}
	return nil
}

// Score implements ScorePlugin: the number of PreferNoSchedule taints not
// tolerated by a toleration for PreferNoSchedule (or all effects).
func (TaintToleration) Score(state *CycleState, n *NodeInfo) int64 {
	var prefer []corev1.Toleration
	for _, t := range state.Pod.Pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			prefer = append(prefer, t)
		}
	}
	var count int64
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !Tolerates(prefer, t) {
			count++
		}
	}
	return count
}

// Normalize implements ScorePlugin: fewer untolerated taints score higher.
func (TaintToleration) Normalize(scores []int64) { defaultNormalize(scores, true) }

// Tolerates reports whether one of tols tolerates taint, with upstream's
// matching: an empty effect matches every effect, an empty key with Exists
// matches every taint, Equal (or no operator) compares the values.
func Tolerates(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if toleratesTaint(&tols[i], taint) {
			return true
		}
	}
	return false
}

func toleratesTaint(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}

// NodeUnschedulable keeps pods off cordoned nodes (spec.unschedulable)
// unless they tolerate the node.kubernetes.io/unschedulable:NoSchedule
// taint.
type NodeUnschedulable struct{}

// Name implements Plugin.
func (NodeUnschedulable) Name() string { return "NodeUnschedulable" }

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Filter implements FilterPlugin.
func (NodeUnschedulable) Filter(state *CycleState, n *NodeInfo) *Status {
	if n.Node.Spec.Unschedulable && !Tolerates(state.Pod.Pod.Spec.Tolerations, &unschedulableTaint) {
		return unresolvable(ReasonUnschedulable)
	}
	return nil
}

// NodeName keeps a pod that names its node (spec.nodeName) off every other
// node.
type NodeName struct{}

// Name implements Plugin.
func (NodeName) Name() string { return "NodeName" }

// Filter implements FilterPlugin.
func (NodeName) Filter(state *CycleState, n *NodeInfo) *Status {
	if want := state.Pod.Pod.Spec.NodeName; want != "" && want != n.Node.Name {
		return unresolvable(ReasonNodeName)
	}
	return nil
}
