package scheduler

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func scheduleOn(t *testing.T, c *cache, pod *corev1.Pod) (string, error) {
	t.Helper()
	var res Result
	var err error
	c.withSnapshot(func(s *Snapshot) { res, err = DefaultProfile().Schedule(NewCycleState(pod, s), nil) })
	return res.Node, err
}

// TestCacheAssume: a pod assumed on a node counts there at once, so a
// burst does not overcommit the node before the bindings are observed.
func TestCacheAssume(t *testing.T) {
	c := newCache()
	c.setNode(mkNode("n", allocatable("cpu", "2", "memory", "2Gi", "pods", "10")))
	first := mkPod("first", requests("cpu", "1500m"))
	node, err := scheduleOn(t, c, first)
	if err != nil || node != "n" {
		t.Fatalf("first: %q %v", node, err)
	}
	assumed := first.DeepCopy()
	assumed.Spec.NodeName = node
	c.assume(assumed)
	if !c.isAssumed(first.UID) {
		t.Fatal("not assumed")
	}
	if _, err := scheduleOn(t, c, mkPod("second", requests("cpu", "1"))); !isFit(err) {
		t.Fatalf("second pod: %v, want no room beside the assumed one", err)
	}

	// The informer shows the binding: the pod is counted once, confirmed.
	c.setPod(assumed)
	if c.isAssumed(first.UID) {
		t.Error("still assumed after the binding was observed")
	}
	if nodes, pods, n := c.counts(); nodes != 1 || pods != 1 || n != 0 {
		t.Errorf("counts %d nodes %d pods %d assumed, want 1 1 0", nodes, pods, n)
	}
	// forget drops only assumed pods.
	c.forget(first.UID)
	if _, err := scheduleOn(t, c, mkPod("second", requests("cpu", "1"))); !isFit(err) {
		t.Errorf("forget dropped a bound pod: %v", err)
	}
	c.removePod(first.UID)
	if node, err := scheduleOn(t, c, mkPod("second", requests("cpu", "1"))); err != nil || node != "n" {
		t.Errorf("after the pod went: %q %v", node, err)
	}
}

func TestCacheForgetAssumed(t *testing.T) {
	c := newCache()
	c.setNode(mkNode("n", allocatable("cpu", "1", "pods", "10")))
	p := mkPod("p", on("n"), requests("cpu", "1"))
	c.assume(p)
	c.forget(p.UID)
	if node, err := scheduleOn(t, c, mkPod("q", requests("cpu", "1"))); err != nil || node != "n" {
		t.Errorf("after a failed binding: %q %v, want the room back", node, err)
	}
}

// TestCacheNodeGoesAndComes: pods on a deleted node stay counted until they
// go, and count again when the node comes back.
func TestCacheNodeGoesAndComes(t *testing.T) {
	c := newCache()
	c.setNode(mkNode("b"))
	c.setNode(mkNode("a", allocatable("cpu", "1", "pods", "10")))
	c.setPod(mkPod("p", on("a"), requests("cpu", "1")))
	c.withSnapshot(func(s *Snapshot) {
		if len(s.Nodes) != 2 || s.Nodes[0].Node.Name != "a" {
			t.Errorf("snapshot not sorted by name: %v", s.Nodes)
		}
	})
	c.removeNode("a")
	c.withSnapshot(func(s *Snapshot) {
		if len(s.Nodes) != 1 || s.Nodes[0].Node.Name != "b" {
			t.Errorf("deleted node still in the snapshot")
		}
	})
	c.setNode(mkNode("a", allocatable("cpu", "1", "pods", "10")))
	if node, _ := scheduleOn(t, c, mkPod("q", requests("cpu", "1"), nodeSelector(corev1.LabelHostname, "a"))); node != "" {
		t.Errorf("scheduled onto a node whose pod was forgotten: %q", node)
	}
}

func isFit(err error) bool {
	_, ok := errors.AsType[*FitError](err)
	return ok
}

func TestQueueParkAndMove(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	q := newPodQueue(clk, time.Second, 10*time.Second)
	defer q.shutDown()
	q.add("ns/a")
	key, _ := q.get()
	moves := q.startCycle(key)
	q.park(key, moves, map[string]bool{"NodeResourcesFit": true})
	q.done(key)
	if q.parkedCount() != 1 {
		t.Fatalf("parked %d, want 1", q.parkedCount())
	}
	// An event for another filter leaves the pod parked.
	q.move("InterPodAffinity")
	if q.parkedCount() != 1 {
		t.Fatalf("moved by an unrelated event")
	}
	// A helpful one brings it back once its backoff (1 s) has passed.
	clk.SetTime(clk.Now().Add(2 * time.Second))
	q.move("NodeResourcesFit")
	if q.parkedCount() != 0 || q.q.Len() != 1 {
		t.Fatalf("parked %d queued %d, want 0 1", q.parkedCount(), q.q.Len())
	}

	// A move while a cycle runs keeps the pod from being parked.
	key, _ = q.get()
	moves = q.startCycle(key)
	q.move()
	q.park(key, moves, map[string]bool{"NodeResourcesFit": true})
	q.done(key)
	if q.parkedCount() != 0 {
		t.Error("parked although a node changed during the cycle")
	}

	// The unschedulable timeout brings parked pods back anyway.
	q.add("ns/b")
	for q.q.Len() > 0 {
		key, _ = q.get()
		q.park(key, q.startCycle(key), nil)
		q.done(key)
	}
	n := q.parkedCount()
	clk.SetTime(clk.Now().Add(time.Minute))
	q.flush(5 * time.Minute)
	if q.parkedCount() != n {
		t.Error("flushed before the timeout")
	}
	clk.SetTime(clk.Now().Add(5 * time.Minute))
	q.flush(5 * time.Minute)
	if q.parkedCount() != 0 {
		t.Error("not flushed after the timeout")
	}
}

func TestQueueBackoff(t *testing.T) {
	q := newPodQueue(clocktesting.NewFakePassiveClock(time.Now()), time.Second, 10*time.Second)
	defer q.shutDown()
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
		if got := q.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}
