package daemonset

import (
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Taints a node gets from the node lifecycle and the kubelet, which every
// DaemonSet pod tolerates (upstream's AddOrUpdateDaemonPodTolerations).
const (
	TaintNodeNotReady           = "node.kubernetes.io/not-ready"
	TaintNodeUnreachable        = "node.kubernetes.io/unreachable"
	TaintNodeDiskPressure       = "node.kubernetes.io/disk-pressure"
	TaintNodeMemoryPressure     = "node.kubernetes.io/memory-pressure"
	TaintNodePIDPressure        = "node.kubernetes.io/pid-pressure"
	TaintNodeUnschedulable      = "node.kubernetes.io/unschedulable"
	TaintNodeNetworkUnavailable = "node.kubernetes.io/network-unavailable"
)

// addDaemonTolerations adds the tolerations every DaemonSet pod gets:
// NoExecute for not-ready and unreachable nodes (so daemons stay on
// failing nodes), NoSchedule for node pressure and cordoned nodes, and
// for host-network pods NoSchedule for an unavailable pod network.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(key string, effect corev1.TaintEffect) {
		t := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
		for i := range spec.Tolerations {
			if spec.Tolerations[i].Key == key && spec.Tolerations[i].Effect == effect {
				spec.Tolerations[i] = t
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, t)
	}
	add(TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
}

// placement says whether a DaemonSet's pod belongs on a node: shouldRun
// when a new pod should be created there, shouldContinue when a pod
// already there may stay (it tolerates the node's NoExecute taints even if
// a NoSchedule taint keeps new pods off).
type placement struct {
	shouldRun, shouldContinue bool
}

// placeOn decides for ds and node as upstream's NodeShouldRunDaemonPod:
// the template's nodeName, nodeSelector and required node affinity must
// match the node, and its tolerations (with the automatic ones) must
// tolerate the node's NoSchedule and NoExecute taints.
func placeOn(ds *appsv1.DaemonSet, node *corev1.Node, log logr.Logger) placement {
	spec := ds.Spec.Template.Spec.DeepCopy()
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return placement{}
	}
	addDaemonTolerations(spec)
	fits, err := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity).Match(node)
	if err != nil || !fits {
		return placement{}
	}
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(log, node.Spec.Taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	if !untolerated {
		return placement{shouldRun: true, shouldContinue: true}
	}
	_, untoleratedNoExecute := corev1helpers.FindMatchingUntoleratedTaint(log, node.Spec.Taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return placement{shouldContinue: !untoleratedNoExecute}
}
