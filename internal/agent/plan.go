package agent

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podContainers are a pod's containers as the runtime recorded them, by
// name, newest attempt first.
type podContainers map[string][]ContainerStatus

func groupContainers(records []ContainerStatus) podContainers {
	v := podContainers{}
	for _, r := range records {
		v[r.Name] = append(v[r.Name], r)
	}
	for _, list := range v {
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].Attempt != list[j].Attempt {
				return list[i].Attempt > list[j].Attempt
			}
			return list[i].StartedAt.After(list[j].StartedAt)
		})
	}
	return v
}

// latest is the container's newest attempt, or nil.
func (v podContainers) latest(name string) *ContainerStatus {
	if l := v[name]; len(l) > 0 {
		return &l[0]
	}
	return nil
}

// previous is the attempt before the newest, or nil.
func (v podContainers) previous(name string) *ContainerStatus {
	if l := v[name]; len(l) > 1 {
		return &l[1]
	}
	return nil
}

// nextAttempt numbers the container's next attempt.
func (v podContainers) nextAttempt(name string) int {
	if r := v.latest(name); r != nil {
		return r.Attempt + 1
	}
	return 0
}

// running lists the records of running containers.
func (v podContainers) running() []ContainerStatus {
	var out []ContainerStatus
	for _, l := range v {
		for _, r := range l {
			if r.State == StateRunning {
				out = append(out, r)
			}
		}
	}
	return out
}

// probeView is what planning needs of the probes.
type probeView interface {
	// failed says why a running container must be restarted ("" when
	// it need not): a liveness or startup probe failed.
	failed(id string) string
	// started reports whether the container counts as started (its
	// startup probe, if any, succeeded).
	started(c *corev1.Container, id string) bool
}

// plan is what one sync does to a pod's containers.
type plan struct {
	// kill are running containers to stop, with the Killing event's
	// message.
	kill []killStep
	// start are containers to start now, in order.
	start []startStep
	// wait are containers that must be started once their back-off
	// ends, by name, with the time left.
	wait map[string]time.Duration
	// terminal: by its restart policy the pod has finished (all app
	// containers are done, or an init container failed under Never);
	// everything still running is stopped and nothing starts.
	terminal bool
}

type killStep struct {
	rec     ContainerStatus
	message string
}

type startStep struct {
	c    *corev1.Container
	init bool
	// prev is the attempt this one replaces (nil for a first start).
	prev    *ContainerStatus
	attempt int
}

// isSidecar reports whether an init container is a native sidecar
// (restartPolicy: Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// shouldRestart applies the pod's restartPolicy to an app container's
// last attempt (kubelet's ShouldContainerBeRestarted).
func shouldRestart(policy corev1.RestartPolicy, rec *ContainerStatus) bool {
	switch {
	case rec == nil:
		return true
	case rec.State == StateRunning:
		return false
	case rec.State != StateExited:
		return true // created but never ran
	case policy == corev1.RestartPolicyNever:
		return false
	case policy == corev1.RestartPolicyOnFailure:
		return rec.ExitCode != 0
	default:
		return true
	}
}

// planPod decides what to start and stop, the way the kubelet's
// computePodActions does: init containers one at a time in order (native
// sidecars start and stay running), then all app containers; exited
// containers restart per restartPolicy after their back-off; containers
// whose liveness or startup probe failed are stopped (the next sync
// restarts them). backOff says how long a container must still wait to
// replace prev.
func planPod(pod *corev1.Pod, v podContainers, probes probeView, backOff func(c *corev1.Container, prev *ContainerStatus) time.Duration) plan {
	p := plan{wait: map[string]time.Duration{}}
	spec := &pod.Spec
	addStart := func(c *corev1.Container, init bool, prev *ContainerStatus) {
		if prev != nil && prev.State == StateExited {
			if d := backOff(c, prev); d > 0 {
				p.wait[c.Name] = d
				return
			}
		}
		p.start = append(p.start, startStep{c: c, init: init, prev: prev, attempt: v.nextAttempt(c.Name)})
	}
	stopAll := func() {
		p.start, p.wait = nil, map[string]time.Duration{}
		for _, r := range v.running() {
			p.kill = append(p.kill, killStep{rec: r, message: "Stopping container " + r.Name})
		}
	}

	// The pod has been initialized once any app container was created;
	// regular init containers never run again after that.
	initialized := false
	for _, c := range spec.Containers {
		if v.latest(c.Name) != nil {
			initialized = true
		}
	}
	if initialized && spec.RestartPolicy != corev1.RestartPolicyAlways {
		done := true
		for i := range spec.Containers {
			r := v.latest(spec.Containers[i].Name)
			if r == nil || r.State == StateRunning || shouldRestart(spec.RestartPolicy, r) {
				done = false
			}
		}
		if done {
			p.terminal = true
			stopAll()
			return p
		}
	}

	initDone := true
initLoop:
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		rec := v.latest(c.Name)
		if isSidecar(c) {
			if rec != nil && rec.State == StateRunning {
				if why := probes.failed(rec.ID); why != "" {
					p.kill = append(p.kill, killStep{rec: *rec, message: "Container " + c.Name + " " + why})
				} else if initialized || probes.started(c, rec.ID) {
					continue
				}
			} else {
				addStart(c, true, rec)
			}
			if initialized {
				continue
			}
			initDone = false
			break initLoop
		}
		if initialized {
			continue
		}
		switch {
		case rec == nil:
			addStart(c, true, nil)
		case rec.State == StateRunning:
		case rec.State == StateExited && rec.ExitCode == 0:
			continue
		case spec.RestartPolicy == corev1.RestartPolicyNever && rec.State == StateExited:
			// A failed init container fails the pod.
			p.terminal = true
			stopAll()
			return p
		default:
			addStart(c, true, rec)
		}
		initDone = false
		break initLoop
	}
	if !initDone {
		return p
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		rec := v.latest(c.Name)
		switch {
		case rec != nil && rec.State == StateRunning:
			if why := probes.failed(rec.ID); why != "" {
				p.kill = append(p.kill, killStep{rec: *rec, message: "Container " + c.Name + " " + why})
			}
		case shouldRestart(spec.RestartPolicy, rec):
			addStart(c, false, rec)
		}
	}
	return p
}
