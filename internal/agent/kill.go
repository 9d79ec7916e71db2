package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// killContainers stops containers of a live pod in parallel, each with
// its own grace (a failed probe's terminationGracePeriodSeconds, else
// grace).
func (a *Agent) killContainers(ctx context.Context, w *podWorker, pod *corev1.Pod, steps []killStep, grace time.Duration) {
	var wg sync.WaitGroup
	for _, s := range steps {
		g := grace
		if probe := w.failingProbe(s.rec.ID); probe != nil {
			g = a.containerGrace(pod, probe)
		}
		wg.Go(func() { a.killContainer(ctx, pod, s, a.clock.Now().Add(g)) })
	}
	wg.Wait()
}

// killPod stops a pod's containers for its deletion within grace: app
// containers (and a running regular init container) first, in parallel;
// then native sidecars, in reverse order, with what is left of grace.
func (a *Agent) killPod(ctx context.Context, w *podWorker, pod *corev1.Pod, steps []killStep, grace time.Duration) {
	deadline := a.clock.Now().Add(grace)
	var regular []killStep
	sidecars := map[string]killStep{}
	for _, s := range steps {
		if pod != nil {
			if c := containerByName(pod, s.rec.Name); c != nil && isInit(pod, s.rec.Name) && isSidecar(c) {
				sidecars[s.rec.Name] = s
				continue
			}
		}
		regular = append(regular, s)
	}
	var wg sync.WaitGroup
	for _, s := range regular {
		wg.Go(func() { a.killContainer(ctx, pod, s, deadline) })
	}
	wg.Wait()
	if pod == nil {
		return
	}
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		if s, ok := sidecars[pod.Spec.InitContainers[i].Name]; ok {
			a.killContainer(ctx, pod, s, deadline)
		}
	}
}

// killContainer runs the container's preStop hook, then stops it:
// SIGTERM, and SIGKILL at deadline (at least MinGracePeriod after the
// hook). pod may be nil (a pod the API no longer has).
func (a *Agent) killContainer(ctx context.Context, pod *corev1.Pod, s killStep, deadline time.Time) {
	var c *corev1.Container
	if pod != nil {
		c = containerByName(pod, s.rec.Name)
		a.event(pod, s.rec.Name, corev1.EventTypeNormal, "Killing", "%s", s.message)
	}
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		err := a.runHook(hctx, pod, c, s.rec.ID, c.Lifecycle.PreStop)
		cancel()
		if err != nil {
			a.event(pod, s.rec.Name, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
		}
	}
	grace := max(deadline.Sub(a.clock.Now()), a.opts.MinGracePeriod)
	if err := a.rt.Stop(ctx, s.rec.ID, grace); err != nil && !isNotFound(err) {
		a.log.Warn("stopping a container", "id", s.rec.ID, "container", s.rec.Name, "err", err)
	}
}
