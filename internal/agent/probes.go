package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probeType is a kind of probe.
type probeType int

const (
	liveness probeType = iota
	readiness
	startup
)

func (t probeType) String() string {
	return [...]string{"Liveness", "Readiness", "Startup"}[t]
}

// probeResult is a probe's verdict after its thresholds.
type probeResult int

const (
	resultUnknown probeResult = iota
	resultSuccess
	resultFailure
)

// probeKey names the probe of one container (by ID: a restarted container
// starts over).
type probeKey struct {
	id  string
	typ probeType
}

// prober probes one container periodically in its own goroutine.
type prober struct {
	cancel context.CancelFunc
	probe  *corev1.Probe
	result probeResult // guarded by the worker's mu
}

// initialResult is a probe's verdict before it ran: a container counts as
// alive, not ready, and not started.
func initialResult(t probeType) probeResult {
	switch t {
	case liveness:
		return resultSuccess
	case readiness:
		return resultFailure
	}
	return resultUnknown
}

// result is the current verdict of a probe.
func (w *podWorker) result(k probeKey) probeResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resultLocked(k)
}

func (w *podWorker) resultLocked(k probeKey) probeResult {
	if p := w.probes[k]; p != nil {
		return p.result
	}
	if r, ok := w.seeds[k]; ok {
		return r
	}
	return initialResult(k.typ)
}

// setResult records a verdict and reports whether it changed.
func (w *podWorker) setResult(k probeKey, r probeResult) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.probes[k]
	if p == nil || p.result == r {
		return false
	}
	p.result = r
	return true
}

// failed implements probeView: a container whose liveness or startup
// probe failed must be restarted.
func (w *podWorker) failed(id string) string {
	switch {
	case w.result(probeKey{id, liveness}) == resultFailure:
		return "failed liveness probe, will be restarted"
	case w.result(probeKey{id, startup}) == resultFailure:
		return "failed startup probe, will be restarted"
	}
	return ""
}

// failingProbe is the probe that failed a container (nil if none did).
func (w *podWorker) failingProbe(id string) *corev1.Probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range []probeType{liveness, startup} {
		if p := w.probes[probeKey{id, t}]; p != nil && p.result == resultFailure {
			return p.probe
		}
	}
	return nil
}

// started implements probeView.
func (w *podWorker) started(c *corev1.Container, id string) bool {
	return c.StartupProbe == nil || w.result(probeKey{id, startup}) == resultSuccess
}

// ready reports whether a running, started container is ready.
func (w *podWorker) ready(c *corev1.Container, id string) bool {
	return c.ReadinessProbe == nil || w.result(probeKey{id, readiness}) == resultSuccess
}

// stopAll stops every prober.
func (w *podWorker) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, p := range w.probes {
		p.cancel()
		delete(w.probes, k)
	}
}

// seedProbes takes readiness and startup verdicts from the status the API
// holds for containers that still run: a restarted agent keeps ready pods
// ready instead of starting them over as not ready.
func (a *Agent) seedProbes(w *podWorker, pod *corev1.Pod, records []ContainerStatus) {
	running := map[string]string{}
	for _, r := range records {
		if r.State == StateRunning && r.ID != "" {
			running[containerID(r.ID)] = r.ID
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, st := range list {
			id, ok := running[st.ContainerID]
			if !ok || st.State.Running == nil {
				continue
			}
			if st.Started != nil && *st.Started {
				w.seeds[probeKey{id, startup}] = resultSuccess
			}
			if st.Ready {
				w.seeds[probeKey{id, readiness}] = resultSuccess
			}
		}
	}
}

// syncProbes runs a prober for each probe of each running container and
// stops the others.
func (a *Agent) syncProbes(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus, sb *Sandbox) {
	podIP := a.hostIP()
	if sb != nil && !pod.Spec.HostNetwork {
		podIP = sb.IP
	}
	want := map[probeKey]*corev1.Probe{}
	specs := map[probeKey]*corev1.Container{}
	for _, r := range records {
		if r.State != StateRunning || r.ID == "" {
			continue
		}
		c := containerByName(pod, r.Name)
		if c == nil || (isInit(pod, r.Name) && !isSidecar(c)) {
			continue
		}
		for t, p := range map[probeType]*corev1.Probe{liveness: c.LivenessProbe, readiness: c.ReadinessProbe, startup: c.StartupProbe} {
			if p != nil {
				k := probeKey{r.ID, t}
				want[k], specs[k] = p, c
			}
		}
	}
	starting := map[probeKey]ContainerStatus{}
	w.mu.Lock()
	for k, p := range w.probes {
		if want[k] == nil {
			p.cancel()
			delete(w.probes, k)
		}
	}
	for k, probe := range want {
		if w.probes[k] != nil {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p := &prober{cancel: cancel, probe: probe, result: w.resultLocked(k)}
		w.probes[k] = p
		for _, r := range records {
			if r.ID == k.id {
				starting[k] = r
			}
		}
		rec, c := starting[k], specs[k]
		a.wg.Go(func() { a.runProber(pctx, w, k, pod, c, rec, podIP) })
	}
	w.mu.Unlock()
}

// runProber probes a container every periodSeconds after
// initialDelaySeconds, and turns successThreshold successes or
// failureThreshold failures in a row into a verdict. A changed verdict
// wakes the pod's worker. Liveness and readiness probes wait for the
// startup probe; a startup probe stops once it succeeded; a failed
// liveness or startup probe stops (the container is restarted).
func (a *Agent) runProber(ctx context.Context, w *podWorker, k probeKey, pod *corev1.Pod, c *corev1.Container, rec ContainerStatus, podIP string) {
	probe := w.probeSpec(k)
	if probe == nil {
		return
	}
	period := seconds(probe.PeriodSeconds, 10)
	timeout := seconds(probe.TimeoutSeconds, 1)
	successes := int(max(probe.SuccessThreshold, 1))
	failures := int(max(probe.FailureThreshold, 1))
	if probe.FailureThreshold == 0 {
		failures = 3
	}
	if k.typ != readiness {
		successes = 1
	}
	if delay := rec.StartedAt.Add(time.Duration(probe.InitialDelaySeconds) * time.Second).Sub(a.clock.Now()); delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(delay):
		}
	}
	ticker := a.clock.NewTicker(period)
	defer ticker.Stop()
	last, run := resultUnknown, 0
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
			}
		}
		if k.typ != startup && !w.started(c, k.id) {
			continue
		}
		raw, output := a.runProbe(ctx, pod, c, k.id, &probe.ProbeHandler, podIP, timeout)
		if ctx.Err() != nil {
			return
		}
		if raw == resultFailure {
			a.event(pod, c.Name, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", k.typ, output)
		}
		if raw == last {
			run++
		} else {
			last, run = raw, 1
		}
		if (raw == resultFailure && run < failures) || (raw == resultSuccess && run < successes) {
			continue
		}
		if w.setResult(k, raw) {
			a.queue.Add(w.key)
		}
		if (k.typ == startup && raw == resultSuccess) || (k.typ != readiness && raw == resultFailure) {
			return
		}
	}
}

func (w *podWorker) probeSpec(k probeKey) *corev1.Probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.probes[k]; p != nil {
		return p.probe
	}
	return nil
}

func seconds(n int32, def int) time.Duration {
	if n <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(n) * time.Second
}

// runProbe runs one probe attempt.
func (a *Agent) runProbe(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.ProbeHandler, podIP string, timeout time.Duration) (probeResult, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.Exec != nil:
		code, out, err := a.execIn(ctx, id, h.Exec.Command)
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			return resultFailure, fmt.Sprintf("command %q timed out", h.Exec.Command)
		case err != nil:
			return resultFailure, err.Error()
		case code != 0:
			return resultFailure, out
		}
		return resultSuccess, out
	case h.HTTPGet != nil:
		return httpProbe(ctx, h.HTTPGet, c, podIP)
	case h.TCPSocket != nil:
		return tcpProbe(ctx, h.TCPSocket, c, podIP)
	case h.GRPC != nil:
		return grpcProbe(ctx, h.GRPC, podIP)
	}
	return resultFailure, "probe has no handler"
}
