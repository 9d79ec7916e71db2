package scheduler

import (
	"fmt"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Upstream's reasons for resources and ports.
const (
	ReasonTooManyPods = "Too many pods"
	ReasonNodePorts   = "node(s) didn't have free ports for the requested pod ports"
)

// NodeResourcesFit keeps pods off nodes whose allocatable resources, minus
// the requests of the pods already there, cannot hold the pod's requests;
// the pods allocatable caps the number of pods.
type NodeResourcesFit struct{}

// Name implements Plugin.
func (NodeResourcesFit) Name() string { return "NodeResourcesFit" }

// Filter implements FilterPlugin. It reports every resource that is short,
// as upstream does.
func (NodeResourcesFit) Filter(state *CycleState, n *NodeInfo) *Status {
	if reasons := insufficient(state.Pod.Requests, n); len(reasons) > 0 {
		return unschedulable(reasons...)
	}
	return nil
}

// insufficient lists upstream's "Insufficient <resource>" reasons for req
// on n.
func insufficient(req Resource, n *NodeInfo) []string {
	var reasons []string
	if int64(len(n.Pods))+1 > n.Allocatable.Pods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	if req.isZero() {
		return reasons
	}
	alloc, used := n.Allocatable, n.Requested
	if req.MilliCPU > 0 && req.MilliCPU > alloc.MilliCPU-used.MilliCPU {
		reasons = append(reasons, "Insufficient cpu")
	}
	if req.Memory > 0 && req.Memory > alloc.Memory-used.Memory {
		reasons = append(reasons, "Insufficient memory")
	}
	if req.EphemeralStorage > 0 && req.EphemeralStorage > alloc.EphemeralStorage-used.EphemeralStorage {
		reasons = append(reasons, "Insufficient ephemeral-storage")
	}
	names := make([]corev1.ResourceName, 0, len(req.Scalar))
	for name := range req.Scalar {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if q := req.Scalar[name]; q > 0 && q > n.Allocatable.Scalar[name]-n.Requested.Scalar[name] {
			reasons = append(reasons, fmt.Sprintf("Insufficient %v", name))
		}
	}
	return reasons
}

// NodePorts keeps pods off nodes where a host port they ask for is taken.
type NodePorts struct{}

// Name implements Plugin.
func (NodePorts) Name() string { return "NodePorts" }

// Filter implements FilterPlugin.
func (NodePorts) Filter(state *CycleState, n *NodeInfo) *Status {
	want := HostPorts{}
	want.addPod(state.Pod.Pod)
	for ip, ports := range want {
		for pp := range ports {
			if n.UsedPorts.conflicts(ip, corev1.Protocol(pp.protocol), pp.port) {
				return unschedulable(ReasonNodePorts)
			}
		}
	}
	return nil
}

// LeastAllocated favours nodes with the most CPU and memory left after
// placing the pod (non-zero requests, as upstream).
type LeastAllocated struct{}

// Name implements Plugin.
func (LeastAllocated) Name() string { return "NodeResourcesFit" }

// Score implements ScorePlugin: the mean over CPU and memory of the free
// share in 0..100.
func (LeastAllocated) Score(state *CycleState, n *NodeInfo) int64 {
	var sum, count int64
	for _, r := range [][2]int64{
		{n.Allocatable.MilliCPU, n.NonZeroRequested.MilliCPU + state.Pod.NonZero.MilliCPU},
		{n.Allocatable.Memory, n.NonZeroRequested.Memory + state.Pod.NonZero.Memory},
	} {
		capacity, requested := r[0], r[1]
		if capacity == 0 {
			continue
		}
		count++
		if requested <= capacity {
			sum += (capacity - requested) * MaxNodeScore / capacity
		}
	}
	if count == 0 {
		return 0
	}
	return sum / count
}

// Normalize implements ScorePlugin.
func (LeastAllocated) Normalize(scores []int64) { noNormalize(scores) }

// BalancedAllocation favours nodes whose CPU and memory would be used in
// similar shares after placing the pod (its actual requests).
type BalancedAllocation struct{}

// Name implements Plugin.
func (BalancedAllocation) Name() string { return "NodeResourcesBalancedAllocation" }

// Score implements ScorePlugin: (1 - the standard deviation of the used
// shares) × 100. Pods that request neither CPU nor memory score 0
// everywhere (upstream skips them).
func (BalancedAllocation) Score(state *CycleState, n *NodeInfo) int64 {
	req := state.Pod.Requests
	if req.MilliCPU == 0 && req.Memory == 0 {
		return 0
	}
	var fractions []float64
	for _, r := range [][2]int64{
		{n.Allocatable.MilliCPU, n.Requested.MilliCPU + req.MilliCPU},
		{n.Allocatable.Memory, n.Requested.Memory + req.Memory},
	} {
		if r[0] == 0 {
			continue
		}
		fractions = append(fractions, min(float64(r[1])/float64(r[0]), 1))
	}
	std := 0.0
	if len(fractions) == 2 {
		std = math.Abs(fractions[0]-fractions[1]) / 2
	}
	return int64((1 - std) * MaxNodeScore)
}

// Normalize implements ScorePlugin.
func (BalancedAllocation) Normalize(scores []int64) { noNormalize(scores) }
