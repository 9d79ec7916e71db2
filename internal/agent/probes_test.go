package agent_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/agent/podruntime"
)

func TestLivenessProbeRestarts(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	var healthy atomic.Bool
	healthy.Store(true)
	n.rt.SetExec(func(c podruntime.ContainerStatus, cmd []string) agenttest.ExecResult {
		if slices.Equal(cmd, []string{"cat", "/tmp/healthy"}) && !healthy.Load() && c.Attempt == 0 {
			return agenttest.ExecResult{Code: 1, Output: "cat: can't open '/tmp/healthy': No such file or directory"}
		}
		return agenttest.ExecResult{}
	})
	p := pod("live", corev1.Container{Name: "app", Image: "busybox:1", LivenessProbe: &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		PeriodSeconds: 1, FailureThreshold: 2,
	}})
	create(t, env.Client, p)
	waitPod(t, env.Client, "live", "ready", ready)
	healthy.Store(false)
	got := waitPod(t, env.Client, "live", "restarted after failing its liveness probe", func(p *corev1.Pod) bool {
		return status(p, "app").RestartCount == 1 && status(p, "app").State.Running != nil
	})
	if last := status(got, "app").LastTerminationState.Terminated; last == nil || last.ExitCode != 143 {
		t.Errorf("lastState %+v", status(got, "app").LastTerminationState)
	}
	hasEvent(t, env.Client, "live", "Warning Unhealthy: Liveness probe failed: cat: can't open '/tmp/healthy'")
	hasEvent(t, env.Client, "live", "Normal Killing: Container app failed liveness probe, will be restarted")
}

func TestReadinessProbe(t *testing.T) {
	env := newEnv(t)
	startNode(t, env)
	var fail atomic.Bool
	var agentSeen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agentSeen.Store(r.UserAgent() + " " + r.URL.Path + " " + r.Header.Get("X-Probe"))
		if fail.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	p := pod("ready", corev1.Container{Name: "app", Image: "busybox:1",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"),
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}},
			PeriodSeconds: 1, FailureThreshold: 1,
		},
		StartupProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}},
			PeriodSeconds: 1,
		},
	})
	create(t, env.Client, p)
	waitPod(t, env.Client, "ready", "ready", func(p *corev1.Pod) bool {
		s := status(p, "app")
		return ready(p) && s.Ready && s.Started != nil && *s.Started
	})
	if seen, _ := agentSeen.Load().(string); !strings.HasPrefix(seen, "kube-probe/1.") || !strings.HasSuffix(seen, " /healthz yes") {
		t.Errorf("probe request %q", seen)
	}
	fail.Store(true)
	got := waitPod(t, env.Client, "ready", "not ready", func(p *corev1.Pod) bool { return !ready(p) })
	if s := status(got, "app"); s.State.Running == nil || s.RestartCount != 0 || s.Ready {
		t.Errorf("status %+v", s)
	}
	hasEvent(t, env.Client, "ready", "Warning Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503")
	fail.Store(false)
	waitPod(t, env.Client, "ready", "ready again", ready)
}

func TestStartupProbeFailureRestarts(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	var earlyLiveness atomic.Bool
	n.rt.SetExec(func(c podruntime.ContainerStatus, cmd []string) agenttest.ExecResult {
		if c.Attempt > 0 {
			return agenttest.ExecResult{}
		}
		if cmd[0] == "liveness" {
			earlyLiveness.Store(true)
		}
		return agenttest.ExecResult{Code: 1, Output: "warming up"}
	})
	p := pod("slow", corev1.Container{Name: "app", Image: "busybox:1",
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
			PeriodSeconds: 1, FailureThreshold: 2},
		// Liveness waits for the startup probe: failing it would restart
		// the first attempt sooner.
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"liveness"}}},
			PeriodSeconds: 1, FailureThreshold: 1},
	})
	create(t, env.Client, p)
	waitPod(t, env.Client, "slow", "restarted, then started and ready", func(p *corev1.Pod) bool {
		s := status(p, "app")
		return s.RestartCount == 1 && s.Started != nil && *s.Started && ready(p)
	})
	hasEvent(t, env.Client, "slow", "Normal Killing: Container app failed startup probe, will be restarted")
	if earlyLiveness.Load() {
		t.Error("the liveness probe ran before the startup probe succeeded")
	}
}
