package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/errdefs"
)

func TestRestartPolicies(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		switch c.Labels["io.kubernetes.pod.name"] {
		case "never-fails", "onfailure-fails":
			return agenttest.Behavior{ExitAfter: 10e6, ExitCode: 2, TerminationMessage: "bad input"}
		case "oom":
			return agenttest.Behavior{ExitAfter: 10e6, ExitCode: 137, OOM: true}
		case "fallback":
			return agenttest.Behavior{ExitAfter: 10e6, ExitCode: 1, Log: "starting\npanic: boom"}
		}
		return agenttest.Behavior{ExitAfter: 10e6, ExitCode: 0}
	})
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		check  func(p *corev1.Pod) bool
		verify func(t *testing.T, p *corev1.Pod)
	}{
		{"never-succeeds", corev1.RestartPolicyNever, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded },
			func(t *testing.T, p *corev1.Pod) {
				if term := status(p, "app").State.Terminated; term == nil || term.Reason != "Completed" || status(p, "app").RestartCount != 0 {
					t.Errorf("state %+v", status(p, "app"))
				}
			}},
		{"never-fails", corev1.RestartPolicyNever, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed },
			func(t *testing.T, p *corev1.Pod) {
				term := status(p, "app").State.Terminated
				if term == nil || term.ExitCode != 2 || term.Reason != "Error" || term.Message != "bad input" {
					t.Errorf("terminated %+v", term)
				}
			}},
		{"onfailure-succeeds", corev1.RestartPolicyOnFailure, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }, nil},
		{"onfailure-fails", corev1.RestartPolicyOnFailure, func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodRunning && status(p, "app").RestartCount >= 2
		}, nil},
		{"always-completes", corev1.RestartPolicyAlways, func(p *corev1.Pod) bool {
			last := status(p, "app").LastTerminationState.Terminated
			return p.Status.Phase == corev1.PodRunning && status(p, "app").RestartCount >= 2 && last != nil && last.Reason == "Completed"
		}, nil},
		{"oom", corev1.RestartPolicyNever, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed },
			func(t *testing.T, p *corev1.Pod) {
				if term := status(p, "app").State.Terminated; term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
					t.Errorf("terminated %+v", term)
				}
			}},
		{"fallback", corev1.RestartPolicyNever, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed },
			func(t *testing.T, p *corev1.Pod) {
				if term := status(p, "app").State.Terminated; term == nil || term.Message != "starting\npanic: boom" {
					t.Errorf("terminated %+v", term)
				}
			}},
	}
	for _, c := range cases {
		p := pod(c.name)
		p.Spec.RestartPolicy = c.policy
		if c.name == "fallback" {
			p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		}
		create(t, env.Client, p)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := waitPod(t, env.Client, c.name, "reaches its phase", c.check)
			if c.verify != nil {
				c.verify(t, got)
			}
		})
	}
}

func TestImagePullBackOff(t *testing.T) {
	env := newEnv(t)
	startNode(t, env)
	p := pod("nope", corev1.Container{Name: "app", Image: "registry.example/nope:1"})
	created := create(t, env.Client, p)
	got := watchPod(t, env.Client, created, "ErrImagePull", func(p *corev1.Pod) bool { return waiting(p, "app", "ErrImagePull") })
	if msg := status(got, "app").State.Waiting.Message; !strings.Contains(msg, `failed to pull image "registry.example/nope:1"`) || strings.Contains(msg, ": not found") {
		t.Errorf("ErrImagePull message %q", msg)
	}
	got = watchPod(t, env.Client, created, "ImagePullBackOff", func(p *corev1.Pod) bool { return waiting(p, "app", "ImagePullBackOff") })
	if msg := status(got, "app").State.Waiting.Message; !strings.HasPrefix(msg, `Back-off pulling image "registry.example/nope:1": ErrImagePull: failed to pull image`) {
		t.Errorf("ImagePullBackOff message %q", msg)
	}
	if got.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s", got.Status.Phase)
	}
	hasEvent(t, env.Client, "nope", `Normal Pulling: Pulling image "registry.example/nope:1"`)
	hasEvent(t, env.Client, "nope", `Warning Failed: Failed to pull image "registry.example/nope:1"`)
	hasEvent(t, env.Client, "nope", "Warning Failed: Error: ErrImagePull")
	hasEvent(t, env.Client, "nope", `Normal BackOff: Back-off pulling image "registry.example/nope:1"`)
	hasEvent(t, env.Client, "nope", "Warning Failed: Error: ImagePullBackOff")

	// Never: no pull at all.
	never := pod("never", corev1.Container{Name: "app", Image: "absent:1", ImagePullPolicy: corev1.PullNever})
	create(t, env.Client, never)
	got = waitPod(t, env.Client, "never", "ErrImageNeverPull", func(p *corev1.Pod) bool { return waiting(p, "app", "ErrImageNeverPull") })
	if msg := status(got, "app").State.Waiting.Message; msg != `Container image "absent:1" is not present with pull policy of Never` {
		t.Errorf("message %q", msg)
	}
}

func TestCreateContainerConfigError(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	p := pod("cfg", corev1.Container{Name: "app", Image: "busybox:1",
		Command: []string{"echo", "$(COLOR)"},
		Env: []corev1.EnvVar{{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "color"}}}}})
	p = create(t, env.Client, p)
	got := waitPod(t, env.Client, "cfg", "CreateContainerConfigError", func(p *corev1.Pod) bool {
		return waiting(p, "app", "CreateContainerConfigError")
	})
	if msg := status(got, "app").State.Waiting.Message; msg != `configmaps "settings" not found` {
		t.Errorf("message %q", msg)
	}
	hasEvent(t, env.Client, "cfg", `Warning Failed: Error: configmaps "settings" not found`)
	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"color": "green"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, env.Client, "cfg", "running once the ConfigMap exists", ready)
	cfg, _ := n.rt.Config(string(p.UID), "app")
	if fmt.Sprint(cfg.Command) != "[echo green]" || !strings.Contains(strings.Join(cfg.Env, " "), "COLOR=green") {
		t.Errorf("command %v env %v", cfg.Command, cfg.Env)
	}
}

func TestRunContainerError(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	const msg = `exec: "nope": executable file not found in $PATH`
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		return agenttest.Behavior{StartErr: fmt.Errorf("%s: %w", msg, errdefs.ErrInvalid)}
	})
	create(t, env.Client, pod("bad"))
	never := pod("bad-never")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	create(t, env.Client, never)

	got := waitPod(t, env.Client, "bad", "CrashLoopBackOff after a failed start", func(p *corev1.Pod) bool {
		return waiting(p, "app", "CrashLoopBackOff") && status(p, "app").RestartCount >= 1
	})
	last := status(got, "app").LastTerminationState.Terminated
	if last == nil || last.ExitCode != 128 || last.Reason != "StartError" || last.Message != msg {
		t.Errorf("lastState %+v", last)
	}
	hasEvent(t, env.Client, "bad", "Warning Failed: Error: "+msg)
	got = waitPod(t, env.Client, "bad-never", "failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := status(got, "app").State.Terminated; term == nil || term.Reason != "StartError" || term.ExitCode != 128 {
		t.Errorf("state %+v", status(got, "app").State)
	}
	// Nothing of the failed pods runs.
	for _, p := range []string{"bad", "bad-never"} {
		pp, _ := env.Client.CoreV1().Pods("default").Get(context.Background(), p, metav1.GetOptions{})
		if r := n.rt.Running(string(pp.UID)); len(r) > 0 {
			t.Errorf("%s: %d containers running", p, len(r))
		}
	}
}

func TestActiveDeadline(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	p := pod("deadline")
	secs := int64(1)
	p.Spec.ActiveDeadlineSeconds = &secs
	p = create(t, env.Client, p)
	waitPod(t, env.Client, "deadline", "ready", ready)
	got := waitPod(t, env.Client, "deadline", "failed at its deadline", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.Reason != "DeadlineExceeded" || got.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("reason %q message %q", got.Status.Reason, got.Status.Message)
	}
	if r := n.rt.Running(string(p.UID)); len(r) > 0 {
		t.Errorf("%d containers still run", len(r))
	}
	hasEvent(t, env.Client, "deadline", "Warning DeadlineExceeded: Pod was active on the node longer than the specified deadline")
}
