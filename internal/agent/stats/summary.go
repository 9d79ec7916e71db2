package stats

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The kubelet's Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1), the
// part of it that the agent serves: CPU and memory of the node, its pods
// and their containers. Field names and JSON keys are upstream's, so that
// clients of /stats/summary decode it unchanged.

// Summary is a snapshot of the node's and its pods' usage.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is the whole node's usage.
type NodeStats struct {
	NodeName string `json:"nodeName"`
	// StartTime is when the node booted.
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// PodStats is a pod's usage (its cgroup's) and its containers'.
type PodStats struct {
	PodRef PodReference `json:"podRef"`
	// StartTime is when the pod's sandbox was created.
	StartTime  metav1.Time      `json:"startTime"`
	Containers []ContainerStats `json:"containers"`
	CPU        *CPUStats        `json:"cpu,omitempty"`
	Memory     *MemoryStats     `json:"memory,omitempty"`
}

// ContainerStats is a running container's usage.
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// CPUStats is CPU usage at Time.
type CPUStats struct {
	Time metav1.Time `json:"time"`
	// UsageNanoCores is the usage rate since the previous sample this
	// agent took of the same cgroup (absent on the first).
	UsageNanoCores *uint64 `json:"usageNanoCores,omitempty"`
	// UsageCoreNanoSeconds is the cumulative CPU time.
	UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is memory usage at Time.
type MemoryStats struct {
	Time metav1.Time `json:"time"`
	// AvailableBytes is the limit (the node's memory for the node) less
	// the working set; absent without a limit.
	AvailableBytes *uint64 `json:"availableBytes,omitempty"`
	UsageBytes     *uint64 `json:"usageBytes,omitempty"`
	// WorkingSetBytes is the usage less inactive file pages: what the
	// kubelet evicts by and metrics.k8s.io reports.
	WorkingSetBytes *uint64 `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64 `json:"rssBytes,omitempty"`
	PageFaults      *uint64 `json:"pageFaults,omitempty"`
	MajorPageFaults *uint64 `json:"majorPageFaults,omitempty"`
}
