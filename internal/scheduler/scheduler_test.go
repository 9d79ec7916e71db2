package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/scheduler"
	"skiff.dev/skiff/internal/testenv"
)

var fastRetries = scheduler.Options{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

// TestBindsAndSpreads: pods of one owner created at once are bound, spread
// evenly over the nodes, never beyond a node's allocatable, each with a
// Scheduled event.
func TestBindsAndSpreads(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	for i := range 3 {
		createNode(t, c, nodeSpec{name: fmt.Sprintf("n%d", i), cpu: "2", memory: "4Gi"})
	}
	startScheduler(t, c, fastRetries)
	// 12 pods of 500m: exactly what the 3 nodes hold.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() { createPod(t, c, newPod("default", fmt.Sprintf("p%d", i), cpu("500m"), ownedBy("rs-1"))) })
	}
	wg.Wait()
	perNode := map[string]int{}
	for i := range 12 {
		p := waitBound(t, c, "default", fmt.Sprintf("p%d", i))
		perNode[p.Spec.NodeName]++
		if cond := podCondition(p, corev1.PodScheduled); cond == nil || cond.Status != corev1.ConditionTrue {
			t.Errorf("%s: PodScheduled %+v, want True", p.Name, cond)
		}
	}
	for n, count := range perNode {
		if count != 4 {
			t.Errorf("pods per node %v, want 4 on each (2 CPUs / 500m)", perNode)
			break
		}
		_ = n
	}
	eventually(t, "Scheduled event", func(ctx context.Context) (bool, error) {
		evs, err := events(ctx, c, "default", "p0", "Scheduled")
		if err != nil || len(evs) == 0 {
			return false, err
		}
		p, _ := c.CoreV1().Pods("default").Get(ctx, "p0", metav1.GetOptions{})
		want := "Successfully assigned default/p0 to " + p.Spec.NodeName
		if evs[0].Message != want || evs[0].Source.Component != corev1.DefaultSchedulerName {
			t.Fatalf("event %q from %q, want %q from default-scheduler", evs[0].Message, evs[0].Source.Component, want)
		}
		return true, nil
	})

	// The cluster is full: one more pod waits, with upstream's message in an
	// event and in its PodScheduled condition.
	createPod(t, c, newPod("default", "extra", cpu("500m")))
	const want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
	eventually(t, "extra unschedulable", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "extra", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			t.Fatalf("extra bound to %s: overcommitted", p.Spec.NodeName)
		}
		cond := podCondition(p, corev1.PodScheduled)
		if cond == nil || cond.Status != corev1.ConditionFalse {
			return false, nil
		}
		if cond.Reason != corev1.PodReasonUnschedulable || cond.Message != want {
			t.Fatalf("condition %s %q, want Unschedulable %q", cond.Reason, cond.Message, want)
		}
		evs, err := events(ctx, c, "default", "extra", "FailedScheduling")
		return err == nil && len(evs) > 0 && evs[0].Message == want && evs[0].Type == corev1.EventTypeWarning, err
	})

	// Deleting a pod frees room: the waiting pod takes it.
	if err := c.CoreV1().Pods("default").Delete(context.Background(), "p0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitBound(t, c, "default", "extra")
}

// TestUnschedulableUntilANodeFits: a pod no node can take waits with its
// FailedScheduling event and condition, and is bound once a fitting node
// appears.
func TestUnschedulableUntilANodeFits(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	createNode(t, c, nodeSpec{name: "small", cpu: "1", memory: "1Gi"})
	createNode(t, c, nodeSpec{name: "gpu", cpu: "8", memory: "8Gi",
		taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}})
	startScheduler(t, c, fastRetries)
	createPod(t, c, newPod("default", "big", cpu("4")))
	const want = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint(s). " +
		"preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod., 1 Preemption is not helpful for scheduling."
	eventually(t, "FailedScheduling", func(ctx context.Context) (bool, error) {
		evs, err := events(ctx, c, "default", "big", "FailedScheduling")
		if err != nil || len(evs) == 0 {
			return false, err
		}
		if evs[0].Message != want {
			t.Fatalf("event %q, want %q", evs[0].Message, want)
		}
		p, err := c.CoreV1().Pods("default").Get(ctx, "big", metav1.GetOptions{})
		cond := podCondition(p, corev1.PodScheduled)
		return err == nil && cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == "Unschedulable", err
	})
	// kubectl describe shows the event and the condition.
	out, err := runKubectl(t, env.Kubeconfig, "describe", "pod", "big")
	if err != nil {
		t.Fatalf("kubectl describe: %v\n%s", err, out)
	}
	for _, s := range []string{"PodScheduled   False", "FailedScheduling", "default-scheduler", "0/2 nodes are available: 1 Insufficient cpu"} {
		if !strings.Contains(out, s) {
			t.Errorf("kubectl describe pod big lacks %q:\n%s", s, out)
		}
	}
	createNode(t, c, nodeSpec{name: "large", cpu: "8", memory: "8Gi"})
	if p := waitBound(t, c, "default", "big"); p.Spec.NodeName != "large" {
		t.Errorf("bound to %s, want large", p.Spec.NodeName)
	}
}

// TestRespectsSchedulerName leaves pods for other schedulers alone.
func TestRespectsSchedulerName(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	createNode(t, c, nodeSpec{name: "n", cpu: "1", memory: "1Gi"})
	startScheduler(t, c, fastRetries)
	createPod(t, c, newPod("default", "theirs", func(p *corev1.Pod) { p.Spec.SchedulerName = "other-scheduler" }))
	createPod(t, c, newPod("default", "ours"))
	waitBound(t, c, "default", "ours")
	time.Sleep(200 * time.Millisecond)
	if p, _ := c.CoreV1().Pods("default").Get(context.Background(), "theirs", metav1.GetOptions{}); p.Spec.NodeName != "" {
		t.Errorf("bound a pod of another scheduler to %s", p.Spec.NodeName)
	}
}

// TestSchedulingGates: a gated pod waits with reason SchedulingGated and is
// bound once its gates are removed.
func TestSchedulingGates(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	createNode(t, c, nodeSpec{name: "n", cpu: "1", memory: "1Gi"})
	startScheduler(t, c, fastRetries)
	createPod(t, c, newPod("default", "gated", func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	}))
	eventually(t, "SchedulingGated", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "gated", metav1.GetOptions{})
		cond := podCondition(p, corev1.PodScheduled)
		return err == nil && cond != nil && cond.Reason == corev1.PodReasonSchedulingGated, err
	})
	p, _ := c.CoreV1().Pods("default").Get(ctx, "gated", metav1.GetOptions{})
	p.Spec.SchedulingGates = nil
	if _, err := c.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBound(t, c, "default", "gated")
}

// TestCordonAndDrain drives the real kubectl: a cordoned node takes no new
// pods, and drain empties a node (through the eviction subresource when
// the API server has it, else by deleting the pods, as kubectl does).
func TestCordonAndDrain(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := runKubectl(t, env.Kubeconfig, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	createNode(t, c, nodeSpec{name: "a", cpu: "4", memory: "4Gi"})
	createNode(t, c, nodeSpec{name: "b", cpu: "4", memory: "4Gi"})
	testenv.StartFakeKubelet(t, c, nil)
	startScheduler(t, c, fastRetries)

	kubectl("cordon", "a")
	if out := kubectl("get", "node", "a"); !strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("kubectl get node a:\n%s\nwant SchedulingDisabled", out)
	}
	for i := range 4 {
		createPod(t, c, newPod("default", fmt.Sprintf("c%d", i), ownedBy("rs-c")))
	}
	for i := range 4 {
		if p := waitBound(t, c, "default", fmt.Sprintf("c%d", i)); p.Spec.NodeName != "b" {
			t.Errorf("%s bound to cordoned node %s", p.Name, p.Spec.NodeName)
		}
	}

	kubectl("uncordon", "a")
	for i := range 4 {
		createPod(t, c, newPod("default", fmt.Sprintf("d%d", i), ownedBy("rs-d")))
	}
	onA := 0
	for i := range 4 {
		if waitBound(t, c, "default", fmt.Sprintf("d%d", i)).Spec.NodeName == "a" {
			onA++
		}
	}
	if onA == 0 {
		t.Fatal("no pod went to the uncordoned node")
	}

	out := kubectl("drain", "a", "--force", "--ignore-daemonsets", "--timeout=60s")
	t.Logf("kubectl drain a:\n%s", out)
	if !strings.Contains(out, "node/a drained") {
		t.Errorf("drain output lacks node/a drained:\n%s", out)
	}
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=a"})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left on the drained node: %v %v", pods, err)
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Error("drained node is not cordoned")
	}
	createPod(t, c, newPod("default", "after-drain"))
	if p := waitBound(t, c, "default", "after-drain"); p.Spec.NodeName != "b" {
		t.Errorf("pod bound to the drained node")
	}
}
