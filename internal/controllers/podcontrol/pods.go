package podcontrol

import (
	"math"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// IsActive reports whether pod still counts for its controller: not
// finished (Succeeded or Failed) and not being deleted.
func IsActive(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed &&
		pod.DeletionTimestamp == nil
}

// IsReady reports whether pod's Ready condition is True.
func IsReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsAvailable reports whether pod has been ready for at least
// minReadySeconds at now.
func IsAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	return minReadySeconds == 0 || !c.LastTransitionTime.IsZero() &&
		c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// AvailableAt returns when a ready pod counts as available (the time it
// became ready plus minReadySeconds); false when it is not ready.
func AvailableAt(pod *corev1.Pod, minReadySeconds int32) (time.Time, bool) {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second), true
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// DeletionCostAnnotation lowers or raises a pod's place in the deletion
// order among its peers (an int32; lower goes first), as upstream.
const DeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// SortForDeletion orders pods so that the ones to delete first come first,
// by upstream's ranking. The first rule that tells two pods apart decides:
//
//  1. unscheduled before scheduled;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost annotation first;
//  5. more active related pods on the same node first (related are
//     usually the controller's pods and its siblings');
//  6. ready for a shorter time first;
//  7. more container restarts first;
//  8. younger first.
//
// Times in 6 and 8 are compared by the log2 of their age at now, pods in
// the same bucket by UID, as upstream does so that pods of about the same
// age are picked in no particular order.
func SortForDeletion(pods, related []*corev1.Pod, now time.Time) {
	onNode := map[string]int{}
	for _, p := range related {
		if IsActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		switch {
		case deletesFirst(a, b, onNode, now):
			return -1
		case deletesFirst(b, a, onNode, now):
			return 1
		}
		return 0
	})
}

var phaseOrder = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// deletesFirst reports whether a goes before b.
func deletesFirst(a, b *corev1.Pod, onNode map[string]int, now time.Time) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if pa, pb := phaseOrder[a.Status.Phase], phaseOrder[b.Status.Phase]; pa != pb {
		return pa < pb
	}
	ra, rb := IsReady(a), IsReady(b)
	if ra != rb {
		return !ra
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	if na, nb := onNode[a.Spec.NodeName], onNode[b.Spec.NodeName]; na != nb {
		return na > nb
	}
	if ra && rb {
		ta, tb := readyCondition(a).LastTransitionTime.Time, readyCondition(b).LastTransitionTime.Time
		if !ta.Equal(tb) {
			return younger(ta, tb, a, b, now)
		}
	}
	if xa, xb := maxRestarts(a), maxRestarts(b); xa != xb {
		return xa > xb
	}
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return younger(ta, tb, a, b, now)
	}
	return false
}

// younger reports whether time ta is the younger one on the log2 scale of
// age at now; a zero time counts as youngest; a tie goes by UID.
func younger(ta, tb time.Time, a, b *corev1.Pod, now time.Time) bool {
	if ta.IsZero() || tb.IsZero() {
		return ta.IsZero()
	}
	if now.IsZero() {
		return ta.After(tb)
	}
	if ra, rb := logAge(ta, now), logAge(tb, now); ra != rb {
		return ra < rb
	}
	return a.UID < b.UID
}

func logAge(t, now time.Time) int64 {
	if d := now.Sub(t); d > 0 {
		return int64(math.Log2(float64(d)))
	}
	return -1
}

func deletionCost(pod *corev1.Pod) int32 {
	v, err := strconv.ParseInt(pod.Annotations[DeletionCostAnnotation], 10, 32)
	if err != nil {
		return 0
	}
	return int32(v)
}

func maxRestarts(pod *corev1.Pod) int32 {
	var n int32
	for _, c := range pod.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}
