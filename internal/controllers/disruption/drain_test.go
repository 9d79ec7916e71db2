package disruption_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/testenv"
)

// TestDrain is acceptance 4: cordon and drain honour a PodDisruptionBudget.
// A Deployment of 3 runs on node-1 under a budget of minAvailable 2; the
// real kubectl drains node-1 while every controller (scheduler,
// Deployment, ReplicaSet, disruption) runs in the server. Evictions go
// one at a time — each waits for the replacement, scheduled on node-2, to
// become ready — and the number of ready pods never drops below 2.
func TestDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t)
	client := env.Client
	ctx := t.Context()
	// Pods start (Running and Ready) once they are bound to a node.
	testenv.StartFakeKubelet(t, client, func(p *corev1.Pod) testenv.PodOutcome {
		if p.Spec.NodeName == "" {
			return testenv.PodOutcome{Skip: true}
		}
		return testenv.Running()
	})
	node(t, client, "node-1")
	ns := "drain"
	createNamespace(t, client, ns)

	_, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels("web")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels("web")},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers: []corev1.Container{{Name: "web", Image: "busybox"}}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels("web")}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, client, ns, "web", "3/2/3/1")

	// Watch the pods: every state the watch shows must keep 2 ready pods
	// that are not on their way out.
	watch := newHealthWatch(t, client, ns)
	node(t, client, "node-2")

	start := time.Now()
	cmd := exec.CommandContext(ctx, kubectl, "drain", "node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	t.Logf("kubectl drain (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("kubectl drain: %v", err)
	}
	for _, want := range []string{"node/node-1 cordoned", "evicting pod drain/web-", "node/node-1 drained"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl drain output lacks %q", want)
		}
	}
	// All three could not go at once: the budget turned some away.
	if !strings.Contains(string(out), "Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Error("kubectl drain never hit the budget")
	}

	testenv.Eventually(t, "3 ready pods on node-2", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == "node-2" && p.DeletionTimestamp == nil && ready(&p) {
				n++
			}
		}
		return n == 3, nil
	})
	if min, seen := watch.stop(); min < 2 {
		t.Errorf("ready pods dropped to %d during the drain (states seen: %v)", min, seen)
	} else {
		t.Logf("ready pods never fewer than %d; states seen: %v", min, seen)
	}
	n1, err := client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n1.Spec.Unschedulable {
		t.Error("node-1 is not cordoned")
	}

	cmd = exec.CommandContext(ctx, kubectl, "uncordon", "node-1")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "node/node-1 uncordoned") {
		t.Fatalf("kubectl uncordon: %v\n%s", err, out)
	}
	if n1, err = client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{}); err != nil || n1.Spec.Unschedulable {
		t.Errorf("node-1 still cordoned after uncordon: %v", err)
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// healthWatch counts, after every pod event, the ready pods of a
// namespace that are not being deleted.
type healthWatch struct {
	mu     sync.Mutex
	min    int
	seen   []int
	cancel context.CancelFunc
	done   func()
}

func newHealthWatch(t *testing.T, client kubernetes.Interface, ns string) *healthWatch {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods()
	h := &healthWatch{min: 1 << 30}
	count := func(any) {
		pods, _ := inf.Lister().List(k8slabels.Everything())
		n := 0
		for _, p := range pods {
			if p.DeletionTimestamp == nil && ready(p) {
				n++
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.seen) == 0 || h.seen[len(h.seen)-1] != n {
			h.seen = append(h.seen, n)
		}
		h.min = min(h.min, n)
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: count, UpdateFunc: func(_, o any) { count(o) }, DeleteFunc: count,
	})
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	h.cancel, h.done = cancel, factory.Shutdown
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *healthWatch) stop() (int, []int) {
	h.cancel()
	h.done()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.min, h.seen
}
