package agent_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/agent/podruntime"
)

func TestLifecycleHooks(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	var preStopHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/shutdown" {
			preStopHits.Add(1)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	// postStart fails on the first attempt only: that attempt is killed,
	// the next one runs.
	n.rt.SetExec(func(c podruntime.ContainerStatus, cmd []string) agenttest.ExecResult {
		if cmd[0] == "setup" && c.Attempt == 0 {
			return agenttest.ExecResult{Code: 2, Output: "setup failed"}
		}
		return agenttest.ExecResult{}
	})
	p := pod("hooks", corev1.Container{Name: "app", Image: "busybox:1", Lifecycle: &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"setup"}}},
		PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/shutdown", Port: intstr.FromInt32(int32(port))}},
	}})
	create(t, env.Client, p)
	got := waitPod(t, env.Client, "hooks", "running its second attempt", func(p *corev1.Pod) bool {
		return ready(p) && status(p, "app").RestartCount == 1
	})
	_ = got
	hasEvent(t, env.Client, "hooks", "Warning FailedPostStartHook: PostStartHook failed: command 'setup' exited with 2: setup failed")

	// The first attempt's kill ran preStop too.
	first := preStopHits.Load()
	if first != 1 {
		t.Errorf("preStop ran %d times for the killed attempt", first)
	}
	if err := env.Client.CoreV1().Pods("default").Delete(t.Context(), "hooks", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod gone", func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Pods("default").Get(ctx, "hooks", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if got := preStopHits.Load(); got != first+1 {
		t.Errorf("preStop hits %d, want %d", got, first+1)
	}
	if len(n.rt.Sandboxes()) != 0 {
		t.Error("sandbox left")
	}
}
