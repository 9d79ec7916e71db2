package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"

	"skiff.dev/skiff/internal/agent/agenttest"
)

// TestProberStateMachine drives one prober with a fake clock: the
// initial delay, the period, success and failure thresholds, the
// verdicts and the worker wake-ups they cause.
func TestProberStateMachine(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		typ   probeType
		probe corev1.Probe
		// script: the exec results of successive probes (true = exit 0)
		// and the verdict expected after each.
		script []bool
		want   []probeResult
		// stops: the prober ends after the last step.
		stops bool
	}{
		{
			name: "readiness needs 2 successes and 3 failures", typ: readiness,
			probe:  corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 3},
			script: []bool{true, true, false, false, false, true, true},
			want:   []probeResult{resultFailure, resultSuccess, resultSuccess, resultSuccess, resultFailure, resultFailure, resultSuccess},
		},
		{
			name: "liveness fails after the threshold and stops", typ: liveness,
			probe:  corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2},
			script: []bool{true, false, true, false, false},
			want:   []probeResult{resultSuccess, resultSuccess, resultSuccess, resultSuccess, resultFailure},
			stops:  true,
		},
		{
			name: "startup succeeds once and stops", typ: startup,
			probe:  corev1.Probe{PeriodSeconds: 2, FailureThreshold: 10},
			script: []bool{false, false, true},
			want:   []probeResult{resultUnknown, resultUnknown, resultSuccess},
			stops:  true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(start)
			rt := agenttest.NewRuntime(t.TempDir())
			rt.AddImage("img")
			a := New(Options{Clock: clk, Runtime: rt}, nil)
			a.recorder = record.NewFakeRecorder(100)
			a.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[podKey]())
			defer a.queue.ShutDown()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pod := testPod(always, nil, nil, "app")
			pod.Spec.Containers[0].ReadinessProbe = &c.probe // probes of any type share the handler shape
			c.probe.ProbeHandler = corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}
			if _, err := rt.RunSandbox(ctx, a.sandboxConfig(pod)); err != nil {
				t.Fatal(err)
			}
			id, err := rt.CreateAndStart(ctx, ContainerConfig{PodUID: string(pod.UID), Name: "app", Image: "img"})
			if err != nil {
				t.Fatal(err)
			}
			recs, _ := rt.List(ctx, string(pod.UID))
			rec := recs[0]
			rec.StartedAt = start

			var step atomic.Int32
			calls := make(chan struct{}, 10)
			rt.SetExec(func(ContainerStatus, []string) agenttest.ExecResult {
				i := step.Load()
				defer func() { calls <- struct{}{} }()
				if c.script[i] {
					return agenttest.ExecResult{}
				}
				return agenttest.ExecResult{Code: 1, Output: "nope"}
			})
			w := newPodWorker(podKey{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name})
			k := probeKey{id, c.typ}
			w.probes[k] = &prober{cancel: cancel, probe: &c.probe, result: initialResult(c.typ)}
			done := make(chan struct{})
			go func() { a.runProber(ctx, w, k, pod, &pod.Spec.Containers[0], rec, "127.0.0.1"); close(done) }()

			period := time.Duration(c.probe.PeriodSeconds) * time.Second
			for i := range c.script {
				step.Store(int32(i))
				// Let the prober reach its timer, then move time on.
				for !clk.HasWaiters() {
					time.Sleep(time.Millisecond)
				}
				if i == 0 {
					clk.Step(time.Duration(c.probe.InitialDelaySeconds) * time.Second)
				} else {
					clk.Step(period)
				}
				select {
				case <-calls:
				case <-time.After(5 * time.Second):
					t.Fatalf("step %d: the probe did not run", i)
				}
				deadline := time.Now().Add(2 * time.Second)
				for w.result(k) != c.want[i] && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if got := w.result(k); got != c.want[i] {
					t.Fatalf("after step %d: verdict %v, want %v", i, got, c.want[i])
				}
			}
			select {
			case <-done:
				if !c.stops {
					t.Error("the prober stopped")
				}
			case <-time.After(100 * time.Millisecond):
				if c.stops {
					t.Error("the prober kept going")
				}
			}
			// Every change of verdict woke the worker.
			if a.queue.Len() == 0 && c.want[len(c.want)-1] != initialResult(c.typ) {
				t.Error("no wake-up queued")
			}
		})
	}
}
