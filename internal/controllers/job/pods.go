package job

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

// completionIndexEnv is the variable Indexed Jobs' containers read their
// index from.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

func hasTrackingFinalizer(pod *corev1.Pod) bool {
	return slices.Contains(pod.Finalizers, batchv1.JobTrackingFinalizer)
}

// active pods run or may still run: not finished and not being deleted.
func active(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil
}

// terminating pods are being deleted but have not finished.
func terminating(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// onlyReplaceFailed is podReplacementPolicy Failed: a pod being deleted
// counts (and is replaced) only once it has failed.
func onlyReplaceFailed(job *batchv1.Job) bool {
	if p := job.Spec.PodReplacementPolicy; p != nil {
		return *p == batchv1.Failed
	}
	return job.Spec.PodFailurePolicy != nil
}

// podFailed says whether pod counts as a failure: it failed, or it was
// deleted before it succeeded (unless only failed pods are replaced).
func podFailed(pod *corev1.Pod, job *batchv1.Job) bool {
	if pod.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailed(job) {
		return false
	}
	return pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodSucceeded
}

func indexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// completionIndex reads a pod's index from its annotation (or label); -1
// when it has none or it is not a number.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = pod.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// validIndex reports whether pod has an index below completions.
func validIndex(pod *corev1.Pod, job *batchv1.Job) bool {
	ix := completionIndex(pod)
	return ix >= 0 && job.Spec.Completions != nil && ix < int(*job.Spec.Completions)
}

// newPod builds a pod from the Job's template; index is the completion
// index for Indexed Jobs and -1 otherwise.
func newPod(job *batchv1.Job, index int) *corev1.Pod {
	pod := podcontrol.NewPod(&job.Spec.Template, job, metav1.NewControllerRef(job, controllerKind))
	if !hasTrackingFinalizer(pod) {
		pod.Finalizers = append(pod.Finalizers, batchv1.JobTrackingFinalizer)
	}
	if index < 0 {
		return pod
	}
	ix := strconv.Itoa(index)
	pod.GenerateName = fmt.Sprintf("%s-%d-", job.Name, index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = ix
	pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, index)
	env := corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)}}}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == completionIndexEnv }) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	return pod
}

// removalOrder sorts pods so the least advanced go first, as upstream
// ranks pods to delete.
func removalOrder(pods []*corev1.Pod, now time.Time) {
	podcontrol.SortForDeletion(pods, nil, now)
}

// removeFinalizer takes the tracking finalizer off pod. A pod that is gone
// counts as done.
func (c *Controller) removeFinalizer(ctx context.Context, pod *corev1.Pod) error {
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer}},
	})
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove tracking finalizer of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// addFinalizer puts the tracking finalizer on an adopted pod.
func (c *Controller) addFinalizer(ctx context.Context, pod *corev1.Pod) error {
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"finalizers": []string{batchv1.JobTrackingFinalizer}, "uid": pod.UID},
	})
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("add tracking finalizer to pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
