package control

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/mesh/authz/fromistio"
	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// fromistioPeerAuthentication is the default mTLS mode of workloads with
// labels in ns.
func fromistioPeerAuthentication(ns string, labels map[string]string, root string, snap *Snapshot) proxy.MTLSMode {
	return fromistio.PeerAuthentication(ns, labels, root, snap.PeerAuthentications).Default
}

// workloadOf describes pod as Istio's telemetry does.
func workloadOf(pod *corev1.Pod, trustDomain string) meshconfig.Workload {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	w := meshconfig.Workload{
		Pod: pod.Name, Namespace: pod.Namespace, PodIP: pod.Status.PodIP, ServiceAccount: sa,
		Name:        WorkloadName(pod),
		App:         pod.Labels["app"],
		Version:     pod.Labels["version"],
		Principal:   trustDomain + "/ns/" + pod.Namespace + "/sa/" + sa,
		TrustDomain: trustDomain,
	}
	w.CanonicalService = firstLabel(pod.Labels, "service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
	if w.CanonicalService == "" {
		w.CanonicalService = w.Name
	}
	w.CanonicalRevision = firstLabel(pod.Labels, "service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
	if w.CanonicalRevision == "" {
		w.CanonicalRevision = "latest"
	}
	return w
}

func firstLabel(labels map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

// WorkloadName is the pod's workload as Istio names it: a ReplicaSet's
// Deployment (the ReplicaSet's name without its pod-template-hash
// suffix), a Job's CronJob (without the schedule suffix), another
// controller's name, else the pod's own name.
func WorkloadName(pod *corev1.Pod) string {
	var owner *corev1.ObjectReference
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			owner = &corev1.ObjectReference{Kind: ref.Kind, Name: ref.Name}
			break
		}
	}
	if owner == nil {
		return pod.Name
	}
	switch owner.Kind {
	case "ReplicaSet":
		if h := pod.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(owner.Name, "-"+h) {
			return strings.TrimSuffix(owner.Name, "-"+h)
		}
		if i := strings.LastIndexByte(owner.Name, '-'); i > 0 {
			return owner.Name[:i]
		}
	case "Job":
		// A CronJob's Jobs are NAME-<minutes since epoch>.
		if i := strings.LastIndexByte(owner.Name, '-'); i > 0 && isDigits(owner.Name[i+1:]) && len(owner.Name[i+1:]) >= 8 {
			return owner.Name[:i]
		}
	}
	return owner.Name
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
