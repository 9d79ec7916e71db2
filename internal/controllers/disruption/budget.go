package disruption

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"
)

// scaleOf finds the controller a pod's controller reference names and its
// desired scale; found is false when ref names nothing this finder knows.
type scaleOf func(ref *metav1.OwnerReference, namespace string) (uid types.UID, scale int32, found bool, err error)

// expectedPods returns how many pods the budget expects and how many must
// stay healthy, as upstream computes them: an integer minAvailable counts
// the selected pods; a percentage, or maxUnavailable, is taken of the sum
// of the scales of the pods' controllers. Pods without a controller are
// returned as unmanaged (they only work with an integer minAvailable).
func expectedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, find scaleOf) (expected, desiredHealthy int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		expected, unmanaged, err = expectedScale(pods, find)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		desiredHealthy = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desiredHealthy = pdb.Spec.MinAvailable.IntVal
		expected = int32(len(pods))
	case pdb.Spec.MinAvailable != nil:
		expected, unmanaged, err = expectedScale(pods, find)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		desiredHealthy = int32(minAvailable)
	}
	return expected, desiredHealthy, unmanaged, nil
}

// expectedScale sums the scales of the distinct controllers of pods.
func expectedScale(pods []*corev1.Pod, find scaleOf) (int32, []string, error) {
	scales := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOfNoCopy(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := scales[ref.UID]; ok {
			continue
		}
		uid, scale, found, err := find(ref, pod.Namespace)
		if err != nil {
			return 0, unmanaged, err
		}
		if !found {
			return 0, unmanaged, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		scales[uid] = scale
	}
	var sum int32
	for _, s := range scales {
		sum += s
	}
	return sum, unmanaged, nil
}

// podReady reports the pod's Ready condition.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countHealthy counts the ready pods that are neither being deleted nor
// about to be (evicted within the last timeout).
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time, timeout time.Duration) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if t, ok := disrupted[pod.Name]; ok && t.Add(timeout).After(now) {
			continue
		}
		if podReady(pod) {
			n++
		}
	}
	return n
}

// pruneDisrupted keeps the status.disruptedPods entries of pods that still
// exist, are not being deleted yet, and whose eviction is recent; it
// returns them, the pods whose eviction timed out without a delete, and
// when the earliest remaining entry expires (nil: none remain).
func pruneDisrupted(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time, timeout time.Duration) (map[string]metav1.Time, []*corev1.Pod, *time.Time) {
	out := map[string]metav1.Time{}
	if pdb.Status.DisruptedPods == nil {
		return out, nil, nil
	}
	var expired []*corev1.Pod
	var recheck *time.Time
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		t, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		deadline := t.Add(timeout)
		if deadline.Before(now) {
			expired = append(expired, pod)
			continue
		}
		if recheck == nil || deadline.Before(*recheck) {
			recheck = &deadline
		}
		out[pod.Name] = t
	}
	return out, expired, recheck
}

// newStatus is the budget's status for the counts; disruptions are only
// allowed while the budget expects some pods.
func newStatus(pdb *policyv1.PodDisruptionBudget, currentHealthy, desiredHealthy, expected int32, disrupted map[string]metav1.Time) policyv1.PodDisruptionBudgetStatus {
	allowed := currentHealthy - desiredHealthy
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	next := pdb.DeepCopy()
	next.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy:     currentHealthy,
		DesiredHealthy:     desiredHealthy,
		ExpectedPods:       expected,
		DisruptionsAllowed: allowed,
		DisruptedPods:      disrupted,
		ObservedGeneration: pdb.Generation,
		Conditions:         next.Status.Conditions,
	}
	pdbhelper.UpdateDisruptionAllowedCondition(next)
	return next.Status
}

// upToDate reports whether pdb's status already says what next does.
func upToDate(pdb *policyv1.PodDisruptionBudget, next policyv1.PodDisruptionBudgetStatus) bool {
	st := pdb.Status
	if st.CurrentHealthy != next.CurrentHealthy || st.DesiredHealthy != next.DesiredHealthy || st.ExpectedPods != next.ExpectedPods ||
		st.DisruptionsAllowed != next.DisruptionsAllowed || st.ObservedGeneration != pdb.Generation || !pdbhelper.ConditionsAreUpToDate(pdb) {
		return false
	}
	if len(st.DisruptedPods) != len(next.DisruptedPods) {
		return false
	}
	for k, v := range next.DisruptedPods {
		if cur, ok := st.DisruptedPods[k]; !ok || !cur.Equal(&v) {
			return false
		}
	}
	return true
}
