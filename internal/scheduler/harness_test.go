package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/scheduler"
	"skiff.dev/skiff/internal/testenv"
)

// startScheduler runs a scheduler against the client for the test, on its
// own informer factory and with events recorded through the API (so
// kubectl describe shows them). It returns a stop function.
func startScheduler(t testing.TB, client kubernetes.Interface, opts scheduler.Options) func() {
	t.Helper()
	recorder, stopEvents := newRecorder(client)
	stop := startSchedulerWith(t, client, recorder, opts)
	var once sync.Once
	stopAll := func() { once.Do(func() { stop(); stopEvents() }) }
	t.Cleanup(stopAll)
	return stopAll
}

// newRecorder records events through the API as default-scheduler.
func newRecorder(client kubernetes.Interface) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: corev1.DefaultSchedulerName}), broadcaster.Shutdown
}

func startSchedulerWith(t testing.TB, client kubernetes.Interface, recorder record.EventRecorder, opts scheduler.Options) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := scheduler.New(client, factory, recorder, log, opts)
	factory.Start(ctx.Done())
	stop := testenv.Run(t, "scheduler", func(ctx context.Context) error { return s.Run(ctx, 2) })
	var once sync.Once
	stopAll := func() { once.Do(func() { stop(); cancel(); factory.Shutdown() }) }
	t.Cleanup(stopAll)
	return stopAll
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// nodeSpec describes a simulated node: a plain Node object with capacity
// and allocatable, as a node agent would register it.
type nodeSpec struct {
	name, cpu, memory, pods string
	labels                  map[string]string
	taints                  []corev1.Taint
}

func createNode(t testing.TB, c kubernetes.Interface, n nodeSpec) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	if n.pods == "" {
		n.pods = "110"
	}
	labels := map[string]string{corev1.LabelHostname: n.name}
	for k, v := range n.labels {
		labels[k] = v
	}
	node, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: n.taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server drops status on create; the node posts it after.
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(n.cpu),
		corev1.ResourceMemory: resource.MustParse(n.memory),
		corev1.ResourcePods:   resource.MustParse(n.pods),
	}
	node.Status.Capacity, node.Status.Allocatable = rl, rl
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if node, err = c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return node
}

type podOpt func(*corev1.Pod)

func newPod(ns, name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func cpu(q string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
	}
}

func ownedBy(uid string) podOpt {
	return func(p *corev1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: types.UID(uid), Controller: &yes}}
	}
}

func createPod(t testing.TB, c kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := c.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func eventually(t testing.TB, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitBound waits for the pod to have a node and returns it.
func waitBound(t testing.TB, c kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, fmt.Sprintf("pod %s/%s bound", ns, name), func(ctx context.Context) (bool, error) {
		var err error
		pod, err = c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Spec.NodeName != "", err
	})
	return pod
}

// events returns the events of an object with a reason.
func events(ctx context.Context, c kubernetes.Interface, ns, name, reason string) ([]corev1.Event, error) {
	list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.name": name, "reason": reason,
	}.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// runKubectl runs the real kubectl (the symlink beside the skiff binary)
// against the test's server and returns its combined output.
func runKubectl(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
