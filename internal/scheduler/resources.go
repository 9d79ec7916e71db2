package scheduler

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Resource is an amount of each schedulable resource, in the units the
// scheduler compares: millicores, bytes, pods and plain counts for scalar
// (extended, hugepages) resources.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	Pods             int64
	// Scalar holds extended resources (example.com/gpu) and hugepages.
	Scalar map[corev1.ResourceName]int64
}

// Requests given to containers that request no CPU or memory, for scoring
// only (upstream's non-zero defaults): 0.1 core and 200 MiB.
var nonZeroDefaults = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("100m"),
	corev1.ResourceMemory: resource.MustParse("200Mi"),
}

// resourceOf converts a resource list.
func resourceOf(rl corev1.ResourceList) Resource {
	var r Resource
	r.add(rl)
	return r
}

func (r *Resource) add(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case corev1.ResourcePods:
			r.Pods += q.Value()
		default:
			if isScalar(name) {
				if r.Scalar == nil {
					r.Scalar = map[corev1.ResourceName]int64{}
				}
				r.Scalar[name] += q.Value()
			}
		}
	}
}

// plus adds o to r.
func (r *Resource) plus(o Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.Pods += o.Pods
	for n, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[n] += v
	}
}

// minus subtracts o from r.
func (r *Resource) minus(o Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.Pods -= o.Pods
	for n, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[n] -= v
		if r.Scalar[n] == 0 {
			delete(r.Scalar, n)
		}
	}
}

func (r Resource) isZero() bool {
	return r.MilliCPU == 0 && r.Memory == 0 && r.EphemeralStorage == 0 && len(r.Scalar) == 0
}

// isScalar reports whether the scheduler counts a resource as a plain
// quantity: extended resources (a domain outside kubernetes.io), hugepages
// and attachable volumes.
func isScalar(name corev1.ResourceName) bool {
	s := string(name)
	switch {
	case strings.HasPrefix(s, corev1.ResourceHugePagesPrefix), strings.HasPrefix(s, corev1.ResourceAttachableVolumesPrefix):
		return true
	case strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix):
		return false
	}
	domain, _, found := strings.Cut(s, "/")
	return found && domain != "kubernetes.io" && !strings.HasSuffix(domain, ".kubernetes.io")
}

// podRequests is what a pod asks of a node: the sum of its containers'
// requests, at least the largest init container's, plus overhead and
// pod-level resources (component-helpers' PodRequests, as upstream).
func podRequests(pod *corev1.Pod) Resource {
	return resourceOf(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}

// podNonZeroRequests is podRequests with the non-zero defaults for
// containers that request no CPU or memory; scores use it.
func podNonZeroRequests(pod *corev1.Pod) Resource {
	return resourceOf(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{NonMissingContainerRequests: nonZeroDefaults}))
}
