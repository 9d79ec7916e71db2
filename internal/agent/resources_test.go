package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func res(requests, limits map[corev1.ResourceName]string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{}
	if requests != nil {
		r.Requests = corev1.ResourceList{}
		for k, v := range requests {
			r.Requests[k] = resource.MustParse(v)
		}
	}
	if limits != nil {
		r.Limits = corev1.ResourceList{}
		for k, v := range limits {
			r.Limits[k] = resource.MustParse(v)
		}
	}
	return r
}

const (
	cpu = corev1.ResourceCPU
	mem = corev1.ResourceMemory
)

func TestContainerCgroup(t *testing.T) {
	cases := []struct {
		name string
		r    corev1.ResourceRequirements
		want cgroupValues
	}{
		{"best effort", res(nil, nil), cgroupValues{CPUShares: 2}},
		{"one cpu request", res(map[corev1.ResourceName]string{cpu: "1"}, nil), cgroupValues{CPUShares: 1024}},
		{"250m request", res(map[corev1.ResourceName]string{cpu: "250m"}, nil), cgroupValues{CPUShares: 256}},
		{"1m request is the minimum", res(map[corev1.ResourceName]string{cpu: "1m"}, nil), cgroupValues{CPUShares: 2}},
		{"huge request is capped", res(map[corev1.ResourceName]string{cpu: "1000"}, nil), cgroupValues{CPUShares: 262144}},
		{"limit gives quota and defaults the request", res(nil, map[corev1.ResourceName]string{cpu: "500m"}),
			cgroupValues{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000}},
		{"tiny limit gets the least quota", res(nil, map[corev1.ResourceName]string{cpu: "5m"}),
			cgroupValues{CPUShares: 5, CPUQuota: 1000, CPUPeriod: 100000}},
		{"request and limit", res(map[corev1.ResourceName]string{cpu: "100m", mem: "64Mi"}, map[corev1.ResourceName]string{cpu: "2", mem: "128Mi"}),
			cgroupValues{CPUShares: 102, CPUQuota: 200000, CPUPeriod: 100000, MemoryLimit: 128 << 20}},
		{"memory only", res(nil, map[corev1.ResourceName]string{mem: "1Gi"}), cgroupValues{CPUShares: 2, MemoryLimit: 1 << 30}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := containerCgroup(c.r); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestPodQOS(t *testing.T) {
	both := map[corev1.ResourceName]string{cpu: "1", mem: "1Gi"}
	cases := []struct {
		name       string
		containers []corev1.ResourceRequirements
		init       []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"nothing", []corev1.ResourceRequirements{res(nil, nil)}, nil, corev1.PodQOSBestEffort},
		{"limits equal requests", []corev1.ResourceRequirements{res(both, both)}, nil, corev1.PodQOSGuaranteed},
		{"limits only (requests default to them)", []corev1.ResourceRequirements{res(nil, both)}, nil, corev1.PodQOSGuaranteed},
		{"request below limit", []corev1.ResourceRequirements{res(map[corev1.ResourceName]string{cpu: "500m", mem: "1Gi"}, both)}, nil, corev1.PodQOSBurstable},
		{"cpu limit only", []corev1.ResourceRequirements{res(nil, map[corev1.ResourceName]string{cpu: "1"})}, nil, corev1.PodQOSBurstable},
		{"requests only", []corev1.ResourceRequirements{res(map[corev1.ResourceName]string{mem: "1Gi"}, nil)}, nil, corev1.PodQOSBurstable},
		{"one guaranteed, one best effort", []corev1.ResourceRequirements{res(both, both), res(nil, nil)}, nil, corev1.PodQOSBurstable},
		{"init container counts", []corev1.ResourceRequirements{res(nil, nil)}, []corev1.ResourceRequirements{res(map[corev1.ResourceName]string{cpu: "1"}, nil)}, corev1.PodQOSBurstable},
		{"other resources ignored", []corev1.ResourceRequirements{res(map[corev1.ResourceName]string{corev1.ResourceEphemeralStorage: "1Gi"}, nil)}, nil, corev1.PodQOSBestEffort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := corev1.PodSpec{}
			for i, r := range c.containers {
				spec.Containers = append(spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
			}
			for i, r := range c.init {
				spec.InitContainers = append(spec.InitContainers, corev1.Container{Name: string(rune('i' + i)), Resources: r})
			}
			if got := podQOS(&spec); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}
