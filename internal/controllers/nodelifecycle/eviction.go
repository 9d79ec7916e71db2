package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// evictAt returns when a pod must leave a node with the given NoExecute
// taints, as upstream's taint eviction does: a taint the pod does not
// tolerate evicts it at once; a toleration with tolerationSeconds lets it
// stay that long after the taint came (since gives that time); one
// without lets it stay. Pods get upstream's default tolerations for the
// not-ready and unreachable taints when they have none of their own:
// Skiff's admission does not add them, so a missing one counts as
// tolerating for defaultToleration. ok is false when the pod may stay.
func evictAt(pod *corev1.Pod, taints []corev1.Taint, since func(corev1.Taint) time.Time, defaultToleration time.Duration) (at time.Time, ok bool) {
	for _, t := range taints {
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		deadline, evict := taintDeadline(pod.Spec.Tolerations, t, since(t), defaultToleration)
		if evict && (!ok || deadline.Before(at)) {
			at, ok = deadline, true
		}
	}
	return at, ok
}

func taintDeadline(tols []corev1.Toleration, t corev1.Taint, start time.Time, defaultToleration time.Duration) (time.Time, bool) {
	var used []corev1.Toleration
	for _, tol := range tols {
		if toleratesTaint(&tol, &t) {
			used = append(used, tol)
		}
	}
	if len(used) == 0 {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return start.Add(defaultToleration), true
		}
		return start, true
	}
	var shortest *int64
	for _, tol := range used {
		if s := tol.TolerationSeconds; s != nil && (shortest == nil || *s < *shortest) {
			shortest = s
		}
	}
	if shortest == nil {
		return time.Time{}, false
	}
	return start.Add(time.Duration(max(*shortest, 0)) * time.Second), true
}

// toleratesTaint is upstream's toleration matching: an empty effect
// matches every effect, an empty key with Exists every taint, Equal (or
// no operator) compares values.
func toleratesTaint(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "", corev1.TolerationOpEqual:
		return tol.Value == t.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}
