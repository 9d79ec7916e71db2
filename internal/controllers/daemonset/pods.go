package daemonset

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// Labels on DaemonSet pods, as upstream sets them.
const (
	// HashLabel is the hash of the template a pod was made from.
	HashLabel = appsv1.DefaultDaemonSetUniqueLabelKey // controller-revision-hash
	// GenerationLabel is the DaemonSet's generation when the pod was made
	// (deprecated upstream, still set).
	GenerationLabel = "pod-template-generation"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// templateHash names the version of ds's pod template. Upstream hashes
// its ControllerRevision; Skiff serves none yet, so this hashes the
// template itself.
func templateHash(ds *appsv1.DaemonSet) (string, error) {
	raw, err := json.Marshal(&ds.Spec.Template)
	if err != nil {
		return "", fmt.Errorf("hash pod template: %w", err)
	}
	h := fnv.New32a()
	h.Write(raw)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32())), nil
}

// newPod is ds's pod for node: the template with the automatic
// tolerations, bound to the node directly (spec.nodeName), so it needs no
// scheduler.
func newPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	t := ds.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: namePrefix(ds.Name),
			Namespace:    ds.Namespace,
			Labels:       maps.Clone(t.Labels),
			Annotations:  maps.Clone(t.Annotations),
			Finalizers:   slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: controllerKind.GroupVersion().String(), Kind: controllerKind.Kind,
				Name: ds.Name, UID: ds.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: t.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[HashLabel] = hash
	pod.Labels[GenerationLabel] = fmt.Sprint(ds.Generation)
	pod.Spec.NodeName = node
	addDaemonTolerations(&pod.Spec)
	return pod
}

// namePrefix is "<name>-" cut to leave room for the random suffix.
func namePrefix(name string) string {
	const maxPrefix = 63 - 5
	if len(name) >= maxPrefix {
		name = strings.TrimRight(name[:maxPrefix-1], "-.")
	}
	return name + "-"
}

func isReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// isAvailable says whether pod has been Ready for minReadySeconds.
func isAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !isReady(pod) {
		return false
	}
	since := readyCondition(pod).LastTransitionTime
	return minReadySeconds == 0 || !since.IsZero() && !since.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

// byAge orders a node's daemon pods: bound ones first, then oldest first.
func byAge(a, b *corev1.Pod) int {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		if a.Spec.NodeName != "" {
			return -1
		}
		return 1
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.Before(&b.CreationTimestamp) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}
