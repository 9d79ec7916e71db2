package daemonset_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/testenv"
)

var dedicated = corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}

// TestPlacement: pods go only to nodes that match the nodeSelector and
// whose taints are tolerated, bound directly; a new node gets a pod; a
// node that stops matching loses its pod; a NoSchedule taint added later
// leaves the pod (misscheduled) where a NoExecute one removes it.
func TestPlacement(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "placement")
	worker := map[string]string{"role": "worker"}
	cl.node(t, "n1", worker)
	cl.node(t, "n2", worker, dedicated)
	cl.node(t, "n3", map[string]string{"role": "db"})
	ds := newSet("agent", "agent:1")
	ds.Spec.Template.Spec.NodeSelector = worker
	cl.createSet(t, ns, ds)

	waitPlacement(t, cl, ns, "n1")
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1})
	if out := cl.kubectl(t, "-n", ns, "rollout", "status", "daemonset/agent", "--timeout=30s"); !strings.Contains(out, `daemon set "agent" successfully rolled out`) {
		t.Errorf("kubectl rollout status: %s", out)
	}
	pods, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods: %v, %v", pods, err)
	}
	pod := pods.Items[0]
	if ref := metav1.GetControllerOf(&pod); ref == nil || ref.Kind != "DaemonSet" || ref.Name != "agent" {
		t.Errorf("controller %v", ref)
	}
	if pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == "" {
		t.Errorf("labels %v: no controller-revision-hash", pod.Labels)
	}
	var tolerated []string
	for _, tol := range pod.Spec.Tolerations {
		tolerated = append(tolerated, tol.Key+":"+string(tol.Effect))
	}
	for _, want := range []string{"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unschedulable:NoSchedule", "node.kubernetes.io/disk-pressure:NoSchedule"} {
		if !slices.Contains(tolerated, want) {
			t.Errorf("tolerations %v lack %s", tolerated, want)
		}
	}

	cl.node(t, "n4", worker)
	waitPlacement(t, cl, ns, "n1", "n4")

	// A set that tolerates the taint runs on n2 too.
	tolerant := newSet("tolerant", "agent:1")
	tolerant.Spec.Template.Spec.NodeSelector = worker
	tolerant.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	cl.createSet(t, ns, tolerant)
	testenv.Eventually(t, "the tolerant set runs on n1, n2 and n4", func(ctx context.Context) (bool, error) {
		pods, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=tolerant"})
		if err != nil {
			return false, err
		}
		var nodes []string
		for _, p := range pods.Items {
			nodes = append(nodes, p.Spec.NodeName)
		}
		slices.Sort(nodes)
		return slices.Equal(nodes, []string{"n1", "n2", "n4"}), nil
	})
	if err := cl.client.AppsV1().DaemonSets(ns).Delete(t.Context(), "tolerant", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cl.client.CoreV1().Pods(ns).DeleteCollection(t.Context(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=tolerant"}); err != nil {
		t.Fatal(err)
	}

	// n4 stops matching: its pod goes.
	cl.patchNode(t, "n4", map[string]any{"metadata": map[string]any{"labels": map[string]any{"role": nil}}})
	waitPlacement(t, cl, ns, "n1")

	// A NoSchedule taint keeps the pod where it is, now misscheduled.
	cl.patchNode(t, "n1", map[string]any{"spec": map[string]any{"taints": []corev1.Taint{dedicated}}})
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{NumberMisscheduled: 1})
	waitPlacement(t, cl, ns, "n1")

	// A NoExecute taint it does not tolerate removes it.
	cl.patchNode(t, "n1", map[string]any{"spec": map[string]any{"taints": []corev1.Taint{{Key: "evict", Effect: corev1.TaintEffectNoExecute}}}})
	waitPlacement(t, cl, ns)
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{})
}

// waitPlacement waits until the set "agent" has one live pod on each of
// nodes and none elsewhere.
func waitPlacement(t *testing.T, cl *cluster, ns string, nodes ...string) {
	t.Helper()
	want := map[string][]string{}
	for _, n := range nodes {
		want[n] = []string{"agent:1"}
	}
	var got map[string][]string
	testenv.Eventually(t, fmt.Sprintf("pods run on %v", nodes), func(ctx context.Context) (bool, error) {
		pods, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return false, err
		}
		got = map[string][]string{}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				got[p.Spec.NodeName] = append(got[p.Spec.NodeName], p.Spec.Containers[0].Image)
			}
		}
		return maps.EqualFunc(got, want, slices.Equal), nil
	})
}

// waitStatus waits until the set's status counters equal want's and its
// observedGeneration is current.
func waitStatus(t *testing.T, cl *cluster, ns, name string, want appsv1.DaemonSetStatus) {
	t.Helper()
	var got appsv1.DaemonSetStatus
	testenv.Eventually(t, fmt.Sprintf("status %+v", want), func(ctx context.Context) (bool, error) {
		ds, err := cl.client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = ds.Status
		want.NumberUnavailable = want.DesiredNumberScheduled - want.NumberAvailable
		want.ObservedGeneration = ds.Generation
		return reflect.DeepEqual(got, want), nil
	})
}

// TestRollingUpdate: a template change replaces every pod, with at most
// maxUnavailable nodes at once without a Ready pod; with maxSurge the new
// pod starts beside the old one and no node is ever without a Ready pod.
func TestRollingUpdate(t *testing.T) {
	cases := []struct {
		name                 string
		maxUnavailable       intstr.IntOrString
		maxSurge             intstr.IntOrString
		wantMaxUnavailable   int
		wantSurgedOnSomeNode bool
	}{
		{name: "maxUnavailable 1", maxUnavailable: intstr.FromInt32(1), maxSurge: intstr.FromInt32(0), wantMaxUnavailable: 1},
		{name: "maxSurge 1", maxUnavailable: intstr.FromInt32(0), maxSurge: intstr.FromInt32(1), wantSurgedOnSomeNode: true},
		{name: "maxUnavailable 50%", maxUnavailable: intstr.FromString("50%"), maxSurge: intstr.FromInt32(0), wantMaxUnavailable: 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := startCluster(t)
			ns := cl.namespace(t, fmt.Sprintf("rolling-%d", i))
			nodes := []string{"n1", "n2", "n3"}
			for _, n := range nodes {
				cl.node(t, n, nil)
			}
			ds := newSet("agent", "agent:1")
			ds.Spec.Template.Annotations = map[string]string{delayAnnotation: "100ms"}
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(tc.maxUnavailable), MaxSurge: ptr.To(tc.maxSurge)},
			}
			cl.createSet(t, ns, ds)
			waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3, NumberAvailable: 3, UpdatedNumberScheduled: 3})
			w := watchNodes(t, cl.client, ns, nodes...)
			cl.patchSet(t, ns, "agent", map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "agent", "image": "agent:2"}},
			}}}})
			testenv.Eventually(t, "every node runs agent:2 only", func(ctx context.Context) (bool, error) {
				got, err := cl.podsByNode(ctx, ns)
				if err != nil {
					return false, err
				}
				for _, n := range nodes {
					if !slices.Equal(got[n], []string{"agent:2"}) {
						return false, nil
					}
				}
				return len(got) == 3, nil
			})
			waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3, NumberAvailable: 3, UpdatedNumberScheduled: 3})
			unavailable, perNode := w.get()
			if unavailable > tc.wantMaxUnavailable {
				t.Errorf("%d nodes were without a Ready pod at once, want at most %d", unavailable, tc.wantMaxUnavailable)
			}
			if surged := perNode > 1; surged != tc.wantSurgedOnSomeNode {
				t.Errorf("most pods on one node: %d (surge expected: %v)", perNode, tc.wantSurgedOnSomeNode)
			}
		})
	}
}

// TestOnDelete: a template change replaces nothing until a pod is deleted.
func TestOnDelete(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "ondelete")
	cl.node(t, "n1", nil)
	cl.node(t, "n2", nil)
	ds := newSet("agent", "agent:1")
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	cl.createSet(t, ns, ds)
	waitPlacement(t, cl, ns, "n1", "n2")
	cl.patchSet(t, ns, "agent", map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "agent", "image": "agent:2"}},
	}}}})
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2})
	pods, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=n1"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods on n1: %v, %v", pods, err)
	}
	if err := cl.client.CoreV1().Pods(ns).Delete(t.Context(), pods.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "n1 runs agent:2 and n2 still agent:1", func(ctx context.Context) (bool, error) {
		got, err := cl.podsByNode(ctx, ns)
		return err == nil && slices.Equal(got["n1"], []string{"agent:2"}) && slices.Equal(got["n2"], []string{"agent:1"}), err
	})
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 1})
}

// TestFailedPod: a daemon pod that fails is deleted and replaced.
func TestFailedPod(t *testing.T) {
	var failedOne sync.Once
	var failedName atomic.Value
	cl := startCluster(t, func(pod *corev1.Pod) testenv.PodOutcome {
		out := testenv.Running()
		failedOne.Do(func() {
			failedName.Store(pod.Name)
		})
		if failedName.Load() == pod.Name {
			out = testenv.PodOutcome{Phase: corev1.PodFailed, ExitCode: 1}
		}
		return out
	})
	ns := cl.namespace(t, "failed")
	cl.node(t, "n1", nil)
	cl.createSet(t, ns, newSet("agent", "agent:1"))
	waitStatus(t, cl, ns, "agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1})
	pods, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Name == failedName.Load() {
		t.Fatalf("pods %v (%v): want one, not the failed %v", pods, err, failedName.Load())
	}
	testenv.Eventually(t, "a FailedDaemonPod event", func(ctx context.Context) (bool, error) {
		events, err := cl.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool { return e.Reason == "FailedDaemonPod" }), nil
	})
}
