package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The kubelet's cgroup constants.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	quotaPeriod   = 100000 // µs
	minQuotaPerio = 1000   // µs: the least quota the kernel takes
)

// cgroupValues are a container's cgroup settings.
type cgroupValues struct {
	CPUShares   uint64
	CPUQuota    int64 // 0: unlimited
	CPUPeriod   uint64
	MemoryLimit int64 // 0: unlimited
}

// effectiveRequests are a container's requests with the API's defaulting
// applied: a resource with a limit but no request requests its limit.
func effectiveRequests(r corev1.ResourceRequirements) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range r.Requests {
		out[k] = v
	}
	for k, v := range r.Limits {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// containerCgroup computes a container's cgroup values from its
// resources the way the kubelet does: shares from the CPU request
// (1024 per CPU, at least 2), a CFS quota from the CPU limit over a
// 100 ms period (at least 1 ms), the memory limit as is.
func containerCgroup(r corev1.ResourceRequirements) cgroupValues {
	req := effectiveRequests(r)
	v := cgroupValues{CPUShares: milliCPUToShares(req.Cpu().MilliValue())}
	if lim, ok := r.Limits[corev1.ResourceCPU]; ok && !lim.IsZero() {
		v.CPUPeriod = quotaPeriod
		v.CPUQuota = milliCPUToQuota(lim.MilliValue(), quotaPeriod)
	}
	if lim, ok := r.Limits[corev1.ResourceMemory]; ok && !lim.IsZero() {
		v.MemoryLimit = lim.Value()
	}
	return v
}

func milliCPUToShares(milli int64) uint64 {
	if milli == 0 {
		return minShares
	}
	shares := milli * sharesPerCPU / 1000
	return uint64(min(max(shares, minShares), maxShares))
}

func milliCPUToQuota(milli, period int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*period/1000, minQuotaPerio)
}

// podQOS is the pod's QoS class as the kubelet computes it: BestEffort
// without any CPU or memory request or limit; Guaranteed when every
// container limits both CPU and memory and the pod's requests equal its
// limits; Burstable otherwise.
func podQOS(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	add := func(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		sum := list[name]
		sum.Add(q)
		list[name] = sum
	}
	for _, c := range all {
		for name, q := range effectiveRequests(c.Resources) {
			if qosResource(name) && q.Sign() > 0 {
				add(requests, name, q)
			}
		}
		found := 0
		for name, q := range c.Resources.Limits {
			if qosResource(name) && q.Sign() > 0 {
				add(limits, name, q)
				found++
			}
		}
		if found < 2 {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func qosResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory
}
