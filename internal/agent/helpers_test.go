package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"skiff.dev/skiff/internal/agent"
	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/testenv"
)

const nodeName = "node1"

// testLogLevel is the agents' log level in tests (benchmarks raise it).
var testLogLevel = slog.LevelDebug

// node is one agent under test with its fake runtime.
type node struct {
	env     *testenv.Env
	client  kubernetes.Interface
	rt      *agenttest.Runtime
	dataDir string
	stop    func()
}

// newEnv starts an API server without controllers (no scheduler: test
// pods name their node themselves).
func newEnv(t testing.TB) *testenv.Env {
	t.Helper()
	return testenv.Start(t, testenv.WithoutControllers)
}

// testOptions are fast timings for tests.
func testOptions(env *testenv.Env, rt agent.Runtime, dataDir string) agent.Options {
	return agent.Options{
		NodeName:                  nodeName,
		Client:                    env.Client,
		Runtime:                   rt,
		DataDir:                   dataDir,
		NodeIP:                    "192.0.2.10",
		BackOffInitial:            200 * time.Millisecond,
		BackOffMax:                time.Second,
		BackOffReset:              time.Minute,
		SyncFrequency:             300 * time.Millisecond,
		LeaseRenewInterval:        200 * time.Millisecond,
		NodeStatusUpdateFrequency: 200 * time.Millisecond,
		MinGracePeriod:            50 * time.Millisecond,
	}
}

// startNode runs an agent with a fresh fake runtime.
func startNode(t testing.TB, env *testenv.Env, mutate ...func(*agent.Options)) *node {
	t.Helper()
	dataDir := t.TempDir()
	// The agent mounts tmpfs volumes under its data dir: unmount them
	// before the directory goes, whatever the test did.
	t.Cleanup(func() { agent.UnmountAll(dataDir) })
	rt := agenttest.NewRuntime(t.TempDir())
	rt.AddImage("busybox:1")
	n := &node{env: env, client: env.Client, rt: rt, dataDir: dataDir}
	n.start(t, mutate...)
	return n
}

// start (re)starts the node's agent on its runtime and data dir.
func (n *node) start(t testing.TB, mutate ...func(*agent.Options)) *agent.Agent {
	t.Helper()
	opts := testOptions(n.env, n.rt, n.dataDir)
	for _, f := range mutate {
		f(&opts)
	}
	a := agent.New(opts, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel})))
	n.stop = testenv.Run(t, "agent", a.Run)
	select {
	case <-a.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready after 30s")
	}
	return a
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pod is a pod bound to the test node running busybox containers.
func pod(name string, containers ...corev1.Container) *corev1.Pod {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "busybox:1"}}
	}
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			Containers:                    containers,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

func create(t *testing.T, c kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := c.CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it holds (30 s at most).
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			if !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last: %v)", what, err, last)
	}
}

// watchPod waits until the pod, as created by create, passes through a
// state satisfying cond: every update is seen, however briefly it lasted.
func watchPod(t *testing.T, c kubernetes.Interface, created *corev1.Pod, what string, cond func(p *corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := c.CoreV1().Pods(created.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", created.Name).String(),
		ResourceVersion: created.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var last *corev1.Pod
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			last = p
			if cond(p) {
				return p
			}
		}
	}
	if last != nil {
		t.Fatalf("%s: %s: not seen in 30s; last status %+v", created.Name, what, last.Status)
	}
	t.Fatalf("%s: %s: not seen in 30s", created.Name, what)
	return nil
}

// waitPod waits until the pod satisfies cond and returns it.
func waitPod(t *testing.T, c kubernetes.Interface, name, what string, cond func(p *corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	t.Cleanup(func() {
		if t.Failed() && got != nil {
			t.Logf("pod %s when the test failed: %+v", name, got.Status)
		}
	})
	eventually(t, name+": "+what, func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = p
		return cond(p), nil
	})
	return got
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func status(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}

func waiting(p *corev1.Pod, name, reason string) bool {
	w := status(p, name).State.Waiting
	return w != nil && w.Reason == reason
}

// events lists the events about a pod as "Type Reason: message".
func events(t *testing.T, c kubernetes.Interface, name string) []string {
	t.Helper()
	list, err := c.CoreV1().Events("default").List(t.Context(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return a.FirstTimestamp.Compare(b.FirstTimestamp.Time) })
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Message))
	}
	return out
}

// hasEvent waits for an event about the pod whose "Type Reason: message"
// contains want.
func hasEvent(t *testing.T, c kubernetes.Interface, name, want string) {
	t.Helper()
	var seen []string
	eventually(t, fmt.Sprintf("event %q for %s", want, name), func(ctx context.Context) (bool, error) {
		seen = events(t, c, name)
		return slices.ContainsFunc(seen, func(e string) bool { return strings.Contains(e, want) }), nil
	})
}

// callIndex is the position of the first call with the prefix (-1 if
// none).
func callIndex(calls []string, prefix string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func countCalls(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}
