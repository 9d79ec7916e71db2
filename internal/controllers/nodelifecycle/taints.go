package nodelifecycle

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionTaints maps node conditions to the taint keys upstream's node
// lifecycle controller puts on for them.
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady:              {corev1.ConditionFalse: corev1.TaintNodeNotReady, corev1.ConditionUnknown: corev1.TaintNodeUnreachable},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
}

// managed reports whether the controller owns a taint: the condition
// taints and unschedulable with NoSchedule, not-ready and unreachable with
// NoExecute. Other taints are the user's.
func managed(t corev1.Taint) bool {
	switch t.Effect {
	case corev1.TaintEffectNoExecute:
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	case corev1.TaintEffectNoSchedule:
		if t.Key == corev1.TaintNodeUnschedulable {
			return true
		}
		for _, m := range conditionTaints {
			for _, k := range m {
				if k == t.Key {
					return true
				}
			}
		}
	}
	return false
}

// wantedTaints is the set of managed taints the node's conditions and
// spec.unschedulable call for (without times).
func wantedTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for _, c := range node.Status.Conditions {
		if key, ok := conditionTaints[c.Type][c.Status]; ok {
			out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
			if c.Type == corev1.NodeReady {
				out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute})
			}
		}
	}
	if node.Spec.Unschedulable {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// reconcileTaints returns the node's taints with the managed ones made to
// match wantedTaints: the user's taints and managed taints that stay are
// kept as they are; new NoExecute taints are stamped with now, the time
// their evictions count from. changed is false when nothing differs.
func reconcileTaints(node *corev1.Node, now metav1.Time) (taints []corev1.Taint, changed bool) {
	want := wantedTaints(node)
	same := func(a, b corev1.Taint) bool { return a.Key == b.Key && a.Effect == b.Effect }
	for _, t := range node.Spec.Taints {
		if managed(t) && !slices.ContainsFunc(want, func(w corev1.Taint) bool { return same(w, t) }) {
			changed = true
			continue
		}
		taints = append(taints, t)
	}
	for _, w := range want {
		if slices.ContainsFunc(taints, func(t corev1.Taint) bool { return same(w, t) }) {
			continue
		}
		if w.Effect == corev1.TaintEffectNoExecute {
			w.TimeAdded = now.DeepCopy()
		}
		taints = append(taints, w)
		changed = true
	}
	return taints, changed
}
