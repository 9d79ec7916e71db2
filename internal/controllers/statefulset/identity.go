package statefulset

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Labels every pod of a StatefulSet carries, as upstream sets them.
const (
	PodNameLabel  = appsv1.StatefulSetPodNameLabel // statefulset.kubernetes.io/pod-name
	PodIndexLabel = appsv1.PodIndexLabel           // apps.kubernetes.io/pod-index
	RevisionLabel = appsv1.ControllerRevisionHashLabelKey
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// podName is the stable name of the pod with ordinal ord.
func podName(set *appsv1.StatefulSet, ord int) string {
	return fmt.Sprintf("%s-%d", set.Name, ord)
}

// claimName is the name of the claim from template for the pod with
// ordinal ord: <template>-<set>-<ordinal>.
func claimName(template string, set *appsv1.StatefulSet, ord int) string {
	return fmt.Sprintf("%s-%s-%d", template, set.Name, ord)
}

// ordinalOf returns the ordinal in a pod's name if it is a member of set
// (<set>-<ordinal>), or -1.
func ordinalOf(set *appsv1.StatefulSet, pod *corev1.Pod) int {
	rest, ok := strings.CutPrefix(pod.Name, set.Name+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return -1
	}
	ord, err := strconv.Atoi(rest)
	if err != nil || ord < 0 {
		return -1
	}
	return ord
}

// startOrdinal is the first ordinal (spec.ordinals.start, default 0).
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicaCount(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// newPod makes the pod with ordinal ord from the revision rev.
func newPod(set *appsv1.StatefulSet, rev *revision, ord int) *corev1.Pod {
	t := rev.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        podName(set, ord),
			Namespace:   set.Namespace,
			Labels:      maps.Clone(t.Labels),
			Annotations: maps.Clone(t.Annotations),
			Finalizers:  t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: controllerKind.GroupVersion().String(), Kind: controllerKind.Kind,
				Name: set.Name, UID: set.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: t.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[RevisionLabel] = rev.Name
	setIdentity(pod, ord)
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	setStorage(set, pod, ord)
	return pod
}

// setIdentity sets the labels that say which member a pod is.
func setIdentity(pod *corev1.Pod, ord int) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[PodNameLabel] = pod.Name
	pod.Labels[PodIndexLabel] = strconv.Itoa(ord)
}

// identityMatches says whether pod carries the identity of ordinal ord.
func identityMatches(set *appsv1.StatefulSet, pod *corev1.Pod, ord int) bool {
	return pod.Name == podName(set, ord) && pod.Namespace == set.Namespace &&
		pod.Labels[PodNameLabel] == pod.Name && pod.Labels[PodIndexLabel] == strconv.Itoa(ord)
}

// setStorage points the pod's volumes named after the claim templates at
// the pod's claims, adding them where missing.
func setStorage(set *appsv1.StatefulSet, pod *corev1.Pod, ord int) {
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		src := corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(tmpl.Name, set, ord)}}
		found := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == tmpl.Name {
				pod.Spec.Volumes[i].VolumeSource = src
				found = true
			}
		}
		if !found {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: tmpl.Name, VolumeSource: src})
		}
	}
}

// podRevision is the revision a pod was made from.
func podRevision(pod *corev1.Pod) string { return pod.Labels[RevisionLabel] }

func isCreated(pod *corev1.Pod) bool     { return pod != nil && pod.Status.Phase != "" }
func isTerminating(pod *corev1.Pod) bool { return pod.DeletionTimestamp != nil }
func isFailed(pod *corev1.Pod) bool      { return pod.Status.Phase == corev1.PodFailed }
func isSucceeded(pod *corev1.Pod) bool   { return pod.Status.Phase == corev1.PodSucceeded }

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func isRunningAndReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return pod.Status.Phase == corev1.PodRunning && c != nil && c.Status == corev1.ConditionTrue
}

// availableIn says how long until a Running and Ready pod has been Ready
// for minReadySeconds: 0 when it has (it is available), < 0 when it is
// not Running and Ready at all.
func availableIn(pod *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	if !isRunningAndReady(pod) {
		return -1
	}
	if minReadySeconds <= 0 {
		return 0
	}
	at := readyCondition(pod).LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	return max(at.Sub(now), 0)
}

// isHealthy is Running, Ready and not being deleted.
func isHealthy(pod *corev1.Pod) bool { return isRunningAndReady(pod) && !isTerminating(pod) }
