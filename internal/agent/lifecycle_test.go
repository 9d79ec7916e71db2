package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/agent/podruntime"
)

func TestInitContainersAndSidecars(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		if strings.HasPrefix(c.Name, "init") {
			return agenttest.Behavior{ExitAfter: 100 * time.Millisecond}
		}
		return agenttest.Behavior{}
	})
	always := corev1.ContainerRestartPolicyAlways
	p := pod("init", corev1.Container{Name: "app", Image: "busybox:1"}, corev1.Container{Name: "app2", Image: "busybox:1"})
	p.Spec.InitContainers = []corev1.Container{
		{Name: "init1", Image: "busybox:1"},
		{Name: "proxy", Image: "busybox:1", RestartPolicy: &always},
		{Name: "init2", Image: "busybox:1"},
	}
	// Before anything ran: pending, waiting to initialize.
	create(t, env.Client, p)
	got := waitPod(t, env.Client, "init", "running with its sidecar", func(p *corev1.Pod) bool {
		return ready(p) && p.Status.Phase == corev1.PodRunning
	})
	var starts []string
	for _, c := range n.rt.Calls() {
		if name, ok := strings.CutPrefix(c, "CreateAndStart "); ok {
			starts = append(starts, strings.Fields(name)[0])
		}
	}
	if !slices.Equal(starts[:3], []string{"init1", "proxy", "init2"}) || len(starts) != 5 {
		t.Errorf("start order %v", starts)
	}
	if s := status(got, "proxy"); s.State.Running == nil || !s.Ready || !*s.Started {
		t.Errorf("sidecar %+v", s)
	}
	for _, name := range []string{"init1", "init2"} {
		if s := status(got, name); s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || !s.Ready {
			t.Errorf("%s %+v", name, s)
		}
	}
	// A sidecar that exits is restarted; the init containers are not rerun.
	if err := n.rt.Exit(string(got.UID), "proxy", 1, false); err != nil {
		t.Fatal(err)
	}
	waitPod(t, env.Client, "init", "sidecar restarted", func(p *corev1.Pod) bool {
		s := status(p, "proxy")
		return s.RestartCount == 1 && s.State.Running != nil
	})
	if c := countCalls(n.rt.Calls(), "CreateAndStart init1"); c != 1 {
		t.Errorf("init1 started %d times", c)
	}
}

func TestSidecarStoppedWhenPodCompletes(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		if c.Name == "job" {
			return agenttest.Behavior{ExitAfter: 200 * time.Millisecond}
		}
		return agenttest.Behavior{}
	})
	always := corev1.ContainerRestartPolicyAlways
	p := pod("job", corev1.Container{Name: "job", Image: "busybox:1"})
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.InitContainers = []corev1.Container{{Name: "logger", Image: "busybox:1", RestartPolicy: &always}}
	p = create(t, env.Client, p)
	got := waitPod(t, env.Client, "job", "succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if len(n.rt.Running(string(p.UID))) != 0 {
		t.Error("the sidecar still runs")
	}
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionFalse || c.Reason != "PodCompleted") {
			t.Errorf("Ready %+v", c)
		}
	}
}

// TestRestartSafety restarts the agent on the same runtime and data dir:
// running containers are adopted, not restarted, and the pod stays ready.
func TestRestartSafety(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	p := pod("steady",
		corev1.Container{Name: "app", Image: "busybox:1", ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 60, InitialDelaySeconds: 0}},
		corev1.Container{Name: "sleeper", Image: "busybox:1", Lifecycle: &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"setup"}}}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}}
	p = create(t, env.Client, p)
	before := waitPod(t, env.Client, "steady", "ready", ready)

	n.stop()
	calls := len(n.rt.Calls())
	n.start(t)
	// Let the new agent sync the pod several times.
	time.Sleep(time.Second)
	after, err := env.Client.CoreV1().Pods("default").Get(t.Context(), "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if extra := n.rt.Calls()[calls:]; slices.ContainsFunc(extra, func(c string) bool {
		return !strings.HasPrefix(c, "Exec app [true]")
	}) {
		t.Errorf("the new agent changed things: %v", extra)
	}
	if !ready(after) {
		t.Error("pod not ready after the agent restarted")
	}
	for _, name := range []string{"app", "sleeper"} {
		b, a := status(before, name), status(after, name)
		if a.ContainerID != b.ContainerID || a.RestartCount != 0 || a.State.Running == nil || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
			t.Errorf("%s: before %+v after %+v", name, b, a)
		}
	}
}

// TestOrphansCleanedAtStart deletes a pod while its agent is down: the
// next agent stops and removes what the pod left.
func TestOrphansCleanedAtStart(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	p := create(t, env.Client, pod("orphan"))
	waitPod(t, env.Client, "orphan", "ready", ready)
	n.stop()
	zero := int64(0)
	if err := env.Client.CoreV1().Pods("default").Delete(t.Context(), "orphan", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Pods("default").Get(t.Context(), "orphan", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still there: %v", err)
	}
	n.start(t)
	eventually(t, "orphan's containers and sandbox removed", func(ctx context.Context) (bool, error) {
		list, _ := n.rt.List(ctx, string(p.UID))
		_, sb := n.rt.Sandbox(string(p.UID))
		_, err := os.Stat(filepath.Join(n.dataDir, "pods", string(p.UID)))
		return len(list) == 0 && !sb && os.IsNotExist(err), nil
	})
}

// TestPodRecreatedWithSameName checks that a pod deleted and created again
// under the same name gets new containers.
func TestPodRecreatedWithSameName(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	first := create(t, env.Client, pod("again"))
	waitPod(t, env.Client, "again", "ready", ready)
	zero := int64(0)
	if err := env.Client.CoreV1().Pods("default").Delete(t.Context(), "again", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	second := create(t, env.Client, pod("again"))
	waitPod(t, env.Client, "again", "ready", func(p *corev1.Pod) bool { return p.UID == second.UID && ready(p) })
	eventually(t, "first pod's containers gone", func(ctx context.Context) (bool, error) {
		list, _ := n.rt.List(ctx, string(first.UID))
		return len(list) == 0, nil
	})
}
