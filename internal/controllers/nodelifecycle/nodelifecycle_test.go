package nodelifecycle_test

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"skiff.dev/skiff/internal/controllers/nodelifecycle"
	"skiff.dev/skiff/internal/testenv"
)

func start(t *testing.T, c kubernetes.Interface, opts nodelifecycle.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(c, 0)
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "node-controller"})
	log := slog.New(slog.NewTextHandler(testLog{t}, nil))
	ctrl := nodelifecycle.New(c, factory, recorder, log, opts)
	factory.Start(ctx.Done())
	stop := testenv.Run(t, "node-lifecycle", func(ctx context.Context) error { return ctrl.Run(ctx, 2) })
	t.Cleanup(func() { stop(); cancel(); factory.Shutdown(); broadcaster.Shutdown() })
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// node creates a Ready node with a lease renewed at now, as a node agent
// registers it.
func node(t *testing.T, c kubernetes.Interface, name string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status.Capacity, n.Status.Allocatable = rl, rl
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	renew := metav1.NewMicroTime(now)
	if _, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: new(int32(40)), RenewTime: &renew},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func renewLease(t *testing.T, c kubernetes.Interface, name string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	l, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	renew := metav1.NewMicroTime(now)
	l.Spec.RenewTime = &renew
	if _, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func pod(t *testing.T, c kubernetes.Interface, name, nodeName string, tols ...corev1.Toleration) {
	t.Helper()
	if _, err := c.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: nodeName, Tolerations: tols,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func exists(t *testing.T, c kubernetes.Interface, name string) bool {
	t.Helper()
	p, err := c.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return p.DeletionTimestamp == nil
}

func taintKeys(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	slices.Sort(out)
	return out
}

// TestStaleLease follows a node whose lease stops: NotReady (Unknown) and
// unreachable taints after the grace period, its pods evicted as their
// tolerations run out (the default shortened to 2 minutes), and all undone
// when the lease is renewed again. Time is a fake clock the test moves;
// a second node keeps renewing and is left alone.
func TestStaleLease(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	node(t, c, "stale", clk.Now())
	node(t, c, "healthy", clk.Now())
	secs := func(s int64) *int64 { return &s }
	pod(t, c, "default-toleration", "stale")
	pod(t, c, "tolerates-30s", "stale", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(30)})
	pod(t, c, "tolerates-forever", "stale", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute})
	pod(t, c, "elsewhere", "healthy")
	// The fake node agent makes the pods Running and Ready and finishes
	// graceful deletes; once the stale node's agent is "gone" it no longer
	// reports that node's pods.
	var agentGone atomic.Bool
	testenv.StartFakeKubelet(t, c, func(p *corev1.Pod) testenv.PodOutcome {
		if agentGone.Load() && p.Spec.NodeName == "stale" {
			return testenv.PodOutcome{Skip: true}
		}
		return testenv.Running()
	})
	eventually(t, "pods ready", func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if podReady(&p) != corev1.ConditionTrue {
				return false, nil
			}
		}
		return len(pods.Items) == 4, nil
	})
	agentGone.Store(true)
	// A cordoned node shows when the controller has looked at the nodes:
	// heartbeats count from when the controller first sees them.
	node(t, c, "marker", clk.Now())
	cordon(t, c, "marker")
	start(t, c, nodelifecycle.Options{Clock: clk, DefaultToleration: 2 * time.Minute, MonitorPeriod: 20 * time.Millisecond})
	eventually(t, "controller started", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "marker", metav1.GetOptions{})
		return err == nil && len(n.Spec.Taints) > 0, err
	})
	time.Sleep(100 * time.Millisecond)

	// advance moves the clock in steps well inside the grace period,
	// renewing the healthy node's lease at each.
	advance := func(d time.Duration) {
		for d > 0 {
			step := min(d, 10*time.Second)
			clk.SetTime(clk.Now().Add(step))
			renewLease(t, c, "healthy", clk.Now())
			renewLease(t, c, "marker", clk.Now())
			time.Sleep(60 * time.Millisecond)
			d -= step
		}
	}
	advance(30 * time.Second)
	if n, _ := c.CoreV1().Nodes().Get(ctx, "stale", metav1.GetOptions{}); len(n.Spec.Taints) != 0 {
		t.Fatalf("tainted within the grace period: %v", n.Spec.Taints)
	}

	advance(20 * time.Second) // 50 s without renewal
	eventually(t, "stale node Unknown and tainted", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "stale", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := condition(n, corev1.NodeReady)
		return ready.Status == corev1.ConditionUnknown && ready.Reason == "NodeStatusUnknown" &&
			slices.Equal(taintKeys(n), []string{corev1.TaintNodeUnreachable + ":NoExecute", corev1.TaintNodeUnreachable + ":NoSchedule"}), nil
	})
	eventually(t, "NodeNotReady event", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": "stale", "reason": "NodeNotReady"}.String()})
		return err == nil && len(evs.Items) > 0 && evs.Items[0].Message == "Node stale status is now: NodeNotReady", err
	})
	eventually(t, "pods on the stale node not ready", func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=stale"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if podReady(&p) != corev1.ConditionFalse {
				return false, nil
			}
		}
		return len(pods.Items) == 3, nil
	})
	if p, _ := c.CoreV1().Pods("default").Get(ctx, "elsewhere", metav1.GetOptions{}); podReady(p) != corev1.ConditionTrue {
		t.Error("pod on the healthy node marked not ready")
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "healthy", metav1.GetOptions{}); len(n.Spec.Taints) != 0 || condition(n, corev1.NodeReady).Status != corev1.ConditionTrue {
		t.Fatalf("healthy node touched: %v %+v", n.Spec.Taints, n.Status.Conditions)
	}
	for _, p := range []string{"default-toleration", "tolerates-30s", "tolerates-forever", "elsewhere"} {
		if !exists(t, c, p) {
			t.Fatalf("%s evicted at once", p)
		}
	}

	advance(40 * time.Second) // past the 30 s toleration
	eventually(t, "pod tolerating 30 s evicted", func(context.Context) (bool, error) { return !exists(t, c, "tolerates-30s"), nil })
	if !exists(t, c, "default-toleration") {
		t.Fatal("pod without a toleration evicted before the default toleration ran out")
	}
	eventually(t, "TaintManagerEviction event", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": "tolerates-30s", "reason": "TaintManagerEviction"}.String()})
		return err == nil && len(evs.Items) > 0, err
	})

	// Past the default: the API's DefaultTolerationSeconds admission gives
	// every pod a 300 s unreachable toleration (the controller's own
	// default, 2 min, covers pods created around admission).
	advance(400 * time.Second)
	eventually(t, "pod without a toleration evicted", func(context.Context) (bool, error) { return !exists(t, c, "default-toleration"), nil })
	for _, p := range []string{"tolerates-forever", "elsewhere"} {
		if !exists(t, c, p) {
			t.Errorf("%s evicted", p)
		}
	}

	// The node's lease is renewed: Ready again, untainted.
	renewLease(t, c, "stale", clk.Now())
	eventually(t, "stale node reachable again", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "stale", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return condition(n, corev1.NodeReady).Status == corev1.ConditionTrue && len(n.Spec.Taints) == 0, nil
	})
	if !exists(t, c, "tolerates-forever") {
		t.Error("tolerating pod evicted")
	}
}

// TestCordonTaint: kubectl cordon (spec.unschedulable) gets the
// node.kubernetes.io/unschedulable:NoSchedule taint, uncordon removes it;
// the user's taints stay.
func TestCordonTaint(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	node(t, c, "n", time.Now())
	n, _ := c.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{})
	n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cordon(t, c, "n")
	start(t, c, nodelifecycle.Options{MonitorPeriod: 20 * time.Millisecond})
	want := []string{"dedicated:NoSchedule", corev1.TaintNodeUnschedulable + ":NoSchedule"}
	eventually(t, "unschedulable taint", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{})
		return err == nil && slices.Equal(taintKeys(n), want), err
	})
	n, _ = c.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{})
	n.Spec.Unschedulable = false
	if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "taint removed", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{})
		return err == nil && slices.Equal(taintKeys(n), []string{"dedicated:NoSchedule"}), err
	})
}

func condition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return &corev1.NodeCondition{}
}

func cordon(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Unschedulable = true
	if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}
