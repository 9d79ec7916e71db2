package scheduler

import (
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSchedule(t *testing.T) {
	cases := []struct {
		name     string
		pod      *corev1.Pod
		nodes    []*corev1.Node
		existing []*corev1.Pod
		want     string
	}{
		{name: "the least allocated node", pod: mkPod("p", requests("cpu", "1")),
			nodes:    []*corev1.Node{mkNode("busy"), mkNode("idle")},
			existing: []*corev1.Pod{mkPod("x", on("busy"), requests("cpu", "3", "memory", "6Gi"))}, want: "idle"},
		{name: "the only feasible node", pod: mkPod("p", nodeSelector("disk", "ssd")),
			nodes: []*corev1.Node{mkNode("a"), mkNode("b", nodeLabels("disk", "ssd")), mkNode("c")}, want: "b"},
		{name: "PreferNoSchedule outweighs free resources", pod: mkPod("p", requests("cpu", "1")),
			nodes:    []*corev1.Node{mkNode("tainted", taint("spot", "", corev1.TaintEffectPreferNoSchedule)), mkNode("used")},
			existing: []*corev1.Pod{mkPod("x", on("used"), requests("cpu", "2", "memory", "4Gi"))}, want: "used"},
		{name: "preferred node affinity", pod: mkPod("p", preferredNode(50, "zone", "b")),
			nodes: []*corev1.Node{mkNode("a", nodeLabels("zone", "a")), mkNode("b", nodeLabels("zone", "b"))}, want: "b"},
		{name: "a cordoned node is skipped", pod: mkPod("p"),
			nodes: []*corev1.Node{mkNode("a", cordoned), mkNode("b")}, want: "b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := NewCycleState(tc.pod, NewSnapshot(tc.nodes, tc.existing))
			res, err := DefaultProfile().Schedule(state, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Node != tc.want {
				t.Errorf("node %q (scores %v), want %q", res.Node, res.Scores, tc.want)
			}
		})
	}
}

// TestScheduleSpreadsReplicas places replicas one after another, each
// counted on its node before the next cycle (as the cache's assume does).
func TestScheduleSpreadsReplicas(t *testing.T) {
	snap := NewSnapshot([]*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}, nil)
	perNode := map[string]int{}
	for i := range 9 {
		pod := mkPod(fmt.Sprintf("r%d", i), ownedBy("rs"), requests("cpu", "100m"))
		res, err := DefaultProfile().Schedule(NewCycleState(pod, snap), nil)
		if err != nil {
			t.Fatal(err)
		}
		perNode[res.Node]++
		for _, n := range snap.Nodes {
			if n.Node.Name == res.Node {
				pod.Spec.NodeName = res.Node
				n.AddPod(NewPodInfo(pod))
			}
		}
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if perNode[n] != 3 {
			t.Errorf("replicas per node %v, want 3 each", perNode)
		}
	}
}

func TestScheduleWithoutNodes(t *testing.T) {
	_, err := DefaultProfile().Schedule(NewCycleState(mkPod("p"), NewSnapshot(nil, nil)), nil)
	if !errors.Is(err, ErrNoNodes) || err.Error() != "no nodes available to schedule pods" {
		t.Errorf("err %v, want %v", err, ErrNoNodes)
	}
}

// TestFailedSchedulingMessage checks the FailedScheduling text, filter
// reasons and preemption part, word for word against upstream's.
func TestFailedSchedulingMessage(t *testing.T) {
	small := func(name string, opts ...nodeOpt) *corev1.Node {
		return mkNode(name, append([]nodeOpt{allocatable("cpu", "1", "memory", "1Gi", "pods", "10")}, opts...)...)
	}
	cases := []struct {
		name     string
		pod      *corev1.Pod
		nodes    []*corev1.Node
		existing []*corev1.Pod
		want     string
	}{{
		name:  "resources and a taint",
		pod:   mkPod("p", requests("cpu", "2")),
		nodes: []*corev1.Node{small("a"), small("b"), mkNode("c", taint("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
		want: "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. " +
			"preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..",
	}, {
		name:  "selector and cordon",
		pod:   mkPod("p", nodeSelector("disk", "ssd")),
		nodes: []*corev1.Node{mkNode("a", cordoned), mkNode("b")},
		want: "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable. " +
			"preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
	}, {
		name:  "every short resource counts",
		pod:   mkPod("p", requests("cpu", "2", "memory", "2Gi")),
		nodes: []*corev1.Node{small("a")},
		want: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. " +
			"preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..",
	}, {
		name:     "too many pods",
		pod:      mkPod("p"),
		nodes:    []*corev1.Node{mkNode("a", allocatable("cpu", "1", "pods", "1"))},
		existing: []*corev1.Pod{mkPod("x", on("a"))},
		want:     "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..",
	}, {
		name:     "ports and anti-affinity",
		pod:      mkPod("p", hostPort(80, "", ""), podAntiAffinity(podTerm(corev1.LabelHostname, "app", "db"))),
		nodes:    []*corev1.Node{mkNode("a"), mkNode("b")},
		existing: []*corev1.Pod{mkPod("web", on("a"), hostPort(80, "", "")), mkPod("db", on("b"), podLabels("app", "db"))},
		want: "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) didn't match pod anti-affinity rules. " +
			"preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..",
	}, {
		name:     "affinity and existing anti-affinity",
		pod:      mkPod("p", podLabels("app", "web"), podAffinity(podTerm(corev1.LabelHostname, "app", "cache"))),
		nodes:    []*corev1.Node{mkNode("a"), mkNode("b"), mkNode("c")},
		existing: []*corev1.Pod{mkPod("cache", on("a"), podLabels("app", "cache"), podAntiAffinity(podTerm(corev1.LabelHostname, "app", "web")))},
		want: "0/3 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 2 node(s) didn't match pod affinity rules. " +
			"preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod., 2 Preemption is not helpful for scheduling.",
	}, {
		name:  "preemption policy Never",
		pod:   mkPod("p", requests("cpu", "2"), preemptNever),
		nodes: []*corev1.Node{small("a")},
		want:  "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.",
	}, {
		name:     "lower priority pods that would not make room",
		pod:      mkPod("p", requests("cpu", "2"), priority(100)),
		nodes:    []*corev1.Node{small("a")},
		existing: []*corev1.Pod{mkPod("low", on("a"), requests("cpu", "500m"), priority(1))},
		want:     "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..",
	}, {
		name:     "lower priority pods that would make room (Skiff does not preempt)",
		pod:      mkPod("p", requests("cpu", "1"), priority(100)),
		nodes:    []*corev1.Node{small("a")},
		existing: []*corev1.Pod{mkPod("low", on("a"), requests("cpu", "500m"), priority(1))},
		want:     "0/1 nodes are available: 1 Insufficient cpu.",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prof := DefaultProfile()
			state := NewCycleState(tc.pod, NewSnapshot(tc.nodes, tc.existing))
			_, err := prof.Schedule(state, nil)
			fe, ok := errors.AsType[*FitError](err)
			if !ok {
				t.Fatalf("err %v, want a FitError", err)
			}
			fe.PostFilterMsg = prof.PreemptionMessage(state, fe)
			if got := fe.Error(); got != tc.want {
				t.Errorf("message\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}
