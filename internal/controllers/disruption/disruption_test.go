package disruption_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/disruption"
	"skiff.dev/skiff/internal/testenv"
)

// startController runs the disruption controller for the test on its own
// informer factory.
func startController(t *testing.T, client kubernetes.Interface, opts disruption.Options) {
	t.Helper()
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "controllermanager"})
	factory := informers.NewSharedInformerFactory(client, 0)
	c := disruption.New(client, factory, recorder, testenv.Logger(t), opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	testenv.Run(t, "disruption", func(ctx context.Context) error { return c.Run(ctx, 2) })
}

func createNamespace(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitStatus waits until the budget's status reads want
// (expected/desired/healthy/allowed).
func waitStatus(t *testing.T, client kubernetes.Interface, ns, name, want string) *policyv1.PodDisruptionBudget {
	t.Helper()
	var pdb *policyv1.PodDisruptionBudget
	testenv.Eventually(t, fmt.Sprintf("budget %s reads %s", name, want), func(ctx context.Context) (bool, error) {
		var err error
		if pdb, err = client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		st := pdb.Status
		got := fmt.Sprintf("%d/%d/%d/%d", st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed)
		if got != want || st.ObservedGeneration != pdb.Generation {
			return false, fmt.Errorf("status %s, observedGeneration %d of %d", got, st.ObservedGeneration, pdb.Generation)
		}
		return true, nil
	})
	return pdb
}

func labels(app string) map[string]string { return map[string]string{"app": app} }

// replicaSet creates a ReplicaSet (no controller runs to act on it) and
// pods it controls.
func replicaSet(t *testing.T, client kubernetes.Interface, ns, name string, scale int32, pods int) {
	t.Helper()
	ctx := t.Context()
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(scale), Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(name)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods {
		_, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, i), Labels: labels(name),
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func budget(t *testing.T, client kubernetes.Interface, ns, name string, minAvailable, maxUnavailable *intstr.IntOrString) {
	t.Helper()
	_, err := client.PolicyV1().PodDisruptionBudgets(ns).Create(t.Context(), &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable, MaxUnavailable: maxUnavailable,
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestController(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	client := env.Client
	testenv.StartFakeKubelet(t, client, nil)
	startController(t, client, disruption.Options{})
	ns := "budgets"
	createNamespace(t, client, ns)

	replicaSet(t, client, ns, "web", 3, 3)
	budget(t, client, ns, "web", ptr.To(intstr.FromInt32(2)), nil)
	pdb := waitStatus(t, client, ns, "web", "3/2/3/1")
	if c := pdb.Status.Conditions; len(c) != 1 || c[0].Type != policyv1.DisruptionAllowedCondition || c[0].Status != metav1.ConditionTrue {
		t.Errorf("conditions %+v", c)
	}

	// A percentage is taken of the controller's scale, not of the pods.
	replicaSet(t, client, ns, "api", 4, 2)
	budget(t, client, ns, "api", nil, ptr.To(intstr.FromString("50%")))
	waitStatus(t, client, ns, "api", "4/2/2/0")

	// An eviction uses the disruption up; once the evicted pod is gone the
	// controller drops it from disruptedPods.
	if err := client.PolicyV1().Evictions(ns).Evict(t.Context(), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "web-0 gone and forgotten", func(ctx context.Context) (bool, error) {
		if _, err := client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, err
		}
		pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(pdb.Status.DisruptedPods) == 0 && pdb.Status.CurrentHealthy == 2, nil
	})
	waitStatus(t, client, ns, "web", "2/2/2/0")

	// A spec change is observed.
	pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(1))
	if _, err := client.PolicyV1().PodDisruptionBudgets(ns).Update(t.Context(), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, client, ns, "web", "2/1/2/1")

	// A pod whose controller has no scale fails safe.
	ds, err := client.AppsV1().DaemonSets(ns).Create(t.Context(), &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels("agent")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels("agent")},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent-x", Labels: labels("agent"),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	budget(t, client, ns, "agent", nil, ptr.To(intstr.FromInt32(1)))
	testenv.Eventually(t, "agent budget fails safe", func(ctx context.Context) (bool, error) {
		pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil || len(pdb.Status.Conditions) == 0 {
			return false, err
		}
		c := pdb.Status.Conditions[0]
		return c.Reason == policyv1.SyncFailedReason && c.Message == "daemonsets.apps does not implement the scale subresource" &&
			pdb.Status.DisruptionsAllowed == 0, nil
	})
}

// TestStaleDisruptionTarget: a pod whose eviction never led to a delete
// gets its DisruptionTarget condition reset.
func TestStaleDisruptionTarget(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	client := env.Client
	startController(t, client, disruption.Options{StalePodDisruptionTimeout: 200 * time.Millisecond})
	ns := "stale"
	createNamespace(t, client, ns)
	pod, err := client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", LastTransitionTime: metav1.Now()}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "DisruptionTarget reset", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget {
				return c.Status == corev1.ConditionFalse, nil
			}
		}
		return false, nil
	})
}

// node registers a Ready node and keeps its lease renewed until the test
// ends, as a node agent would.
func node(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx := t.Context()
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{corev1.LabelHostname: name}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	n.Status.Capacity, n.Status.Allocatable = rl, rl
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime: &metav1.MicroTime{Time: time.Now()}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				if l, err := leases.Update(context.Background(), lease, metav1.UpdateOptions{}); err == nil {
					lease = l
				} else if l, err := leases.Get(context.Background(), name, metav1.GetOptions{}); err == nil {
					lease = l
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
