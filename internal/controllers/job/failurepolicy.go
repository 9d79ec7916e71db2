package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// policyVerdict is what a Job's podFailurePolicy makes of a failed pod.
type policyVerdict struct {
	// failJob, when set, fails the whole Job with this message.
	failJob string
	// count says whether the failure counts toward backoffLimit.
	count bool
}

// matchFailurePolicy applies the first matching rule of the Job's
// podFailurePolicy to a failed pod. Without a policy, or when no rule
// matches, the failure counts. FailIndex (which needs
// backoffLimitPerIndex, not supported here) counts like Count.
func matchFailurePolicy(job *batchv1.Job, pod *corev1.Pod) policyVerdict {
	pfp := job.Spec.PodFailurePolicy
	if pfp == nil || pod.Status.Phase != corev1.PodFailed {
		return policyVerdict{count: true}
	}
	for i, rule := range pfp.Rules {
		var why string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchExitCodes(pod, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			why = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
				cs.Name, pod.Namespace, pod.Name, cs.State.Terminated.ExitCode, rule.Action, i)
		case len(rule.OnPodConditions) > 0:
			c := matchConditions(pod, rule.OnPodConditions)
			if c == nil {
				continue
			}
			why = fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", pod.Namespace, pod.Name, c.Type, rule.Action, i)
		default:
			continue
		}
		switch rule.Action {
		case batchv1.PodFailurePolicyActionFailJob:
			return policyVerdict{failJob: why, count: true}
		case batchv1.PodFailurePolicyActionIgnore:
			return policyVerdict{}
		default:
			return policyVerdict{count: true}
		}
	}
	return policyVerdict{count: true}
}

// matchExitCodes returns the first container (init containers included)
// that terminated with a non-zero code the requirement matches.
func matchExitCodes(pod *corev1.Pod, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			term := cs.State.Terminated
			if term == nil || term.ExitCode == 0 {
				continue
			}
			in := slices.Contains(req.Values, term.ExitCode)
			if req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in ||
				req.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in {
				return cs
			}
		}
	}
	return nil
}

func matchConditions(pod *corev1.Pod, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for _, p := range patterns {
		for i := range pod.Status.Conditions {
			c := &pod.Status.Conditions[i]
			status := p.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			if c.Type == p.Type && c.Status == status {
				return c
			}
		}
	}
	return nil
}
