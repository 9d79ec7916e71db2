package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default Waiting reasons of containers not created yet.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
)

// statusInput is what a pod's status is computed from.
type statusInput struct {
	pod        *corev1.Pod
	containers podContainers
	// reasons are the Waiting reasons of containers whose start failed.
	reasons map[string]waitingReason
	// message returns an exited container's termination message.
	message func(c *corev1.Container, rec *ContainerStatus) string
	probes  probeView
	// ready reports a running container's readiness probe result.
	ready   func(c *corev1.Container, id string) bool
	sandbox *Sandbox
	hostIP  string
	// terminal: the pod is done (restart policy, or deletion) and
	// nothing of it runs any more.
	terminal bool
	// failure, when set, fails the pod with its reason and message.
	failure *waitingReason
	now     metav1.Time
}

// buildStatus computes the pod's status as the kubelet does: container
// statuses from the runtime's records (newest attempt as state, the one
// before as lastState, the attempt number as restartCount), start
// failures as Waiting reasons, the phase from the container states and
// restartPolicy, and the kubelet's conditions. Fields it does not own are
// kept from the pod's current status.
func buildStatus(in statusInput) corev1.PodStatus {
	pod := in.pod
	s := *pod.Status.DeepCopy()
	if s.QOSClass == "" {
		s.QOSClass = podQOS(&pod.Spec)
	}
	if s.StartTime == nil {
		t := in.now
		s.StartTime = &t
	}
	if in.hostIP != "" {
		s.HostIP = in.hostIP
		s.HostIPs = []corev1.HostIP{{IP: in.hostIP}}
	}
	switch {
	case pod.Spec.HostNetwork && in.hostIP != "":
		s.PodIP = in.hostIP
	case in.sandbox != nil && in.sandbox.IP != "":
		s.PodIP = in.sandbox.IP
	}
	if s.PodIP != "" {
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}

	hasInit := len(pod.Spec.InitContainers) > 0
	s.InitContainerStatuses = containerStatuses(in, pod.Spec.InitContainers, pod.Status.InitContainerStatuses, hasInit, true)
	s.ContainerStatuses = containerStatuses(in, pod.Spec.Containers, pod.Status.ContainerStatuses, hasInit, false)
	// App containers' statuses are sorted by name, init containers' by
	// their order, as the kubelet does.
	sort.Slice(s.ContainerStatuses, func(i, j int) bool { return s.ContainerStatuses[i].Name < s.ContainerStatuses[j].Name })

	all := append(append([]corev1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	initialized := false
	for _, c := range pod.Spec.Containers {
		if in.containers.latest(c.Name) != nil {
			initialized = true
		}
	}
	phase := podPhase(pod, all, in.terminal, initialized)
	switch old := pod.Status.Phase; {
	case old == corev1.PodSucceeded || old == corev1.PodFailed:
		phase = old // terminal phases are final
	}
	if phase != pod.Status.Phase {
		s.Reason, s.Message = "", ""
	}
	if in.failure != nil {
		phase, s.Reason, s.Message = corev1.PodFailed, in.failure.Reason, in.failure.Message
	}
	s.Phase = phase

	owned := map[corev1.PodConditionType]bool{corev1.PodScheduled: true, corev1.PodReady: true, corev1.PodInitialized: true,
		corev1.ContainersReady: true, corev1.PodReadyToStartContainers: true}
	var conds []corev1.PodCondition
	for _, c := range pod.Status.Conditions {
		if !owned[c.Type] {
			conds = append(conds, c)
		}
	}
	sandboxReady := corev1.ConditionFalse
	if in.sandbox != nil && !in.terminal {
		sandboxReady = corev1.ConditionTrue
	}
	containersReady := readyCondition(pod, all, phase, corev1.ContainersReady)
	podReady := readyCondition(pod, all, phase, corev1.PodReady)
	if podReady.Status == corev1.ConditionTrue {
		podReady = readinessGates(pod, conds, podReady)
	}
	conds = append(conds,
		corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: sandboxReady},
		initializedCondition(pod, all, phase, initialized),
		podReady,
		containersReady,
		corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	)
	for i := range conds {
		c := &conds[i]
		if !owned[c.Type] {
			continue
		}
		c.LastTransitionTime = in.now
		for _, o := range pod.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
				c.LastProbeTime = o.LastProbeTime
			}
		}
	}
	s.Conditions = conds
	return s
}

// containerStatuses computes the statuses of one list of containers.
func containerStatuses(in statusInput, specs []corev1.Container, old []corev1.ContainerStatus, hasInit, init bool) []corev1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	def := reasonContainerCreating
	if hasInit {
		def = reasonPodInitializing
	}
	out := make([]corev1.ContainerStatus, 0, len(specs))
	for i := range specs {
		c := &specs[i]
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: def}}}
		rec := in.containers.latest(c.Name)
		if rec != nil {
			st.State = containerState(in, c, rec)
			st.RestartCount = int32(rec.Attempt)
			st.ImageID = rec.ImageID
			if rec.ID != "" {
				st.ContainerID = containerID(rec.ID)
			}
			if prev := in.containers.previous(c.Name); prev != nil {
				st.LastTerminationState = containerState(in, c, prev)
			}
		} else {
			for _, o := range old {
				if o.Name == c.Name {
					st.RestartCount = o.RestartCount
					st.LastTerminationState = o.LastTerminationState
				}
			}
		}
		// A container that will be started again waits, with the reason
		// of its last failed start.
		if r, ok := in.reasons[c.Name]; ok && willStart(in.pod, c, init, rec) {
			if st.State.Terminated != nil {
				st.LastTerminationState = st.State
			}
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: r.Reason, Message: r.Message}}
		}
		running := st.State.Running != nil
		started := running
		switch {
		case !running:
		case init && !isSidecar(c):
		case rec != nil:
			started = in.probes.started(c, rec.ID)
		}
		st.Started = &started
		switch {
		case init && !isSidecar(c):
			st.Ready = st.State.Terminated != nil && st.State.Terminated.ExitCode == 0
		case started && rec != nil:
			st.Ready = in.ready(c, rec.ID)
		}
		out = append(out, st)
	}
	return out
}

// willStart reports whether the container is to be started (again).
func willStart(pod *corev1.Pod, c *corev1.Container, init bool, rec *ContainerStatus) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	if init && isSidecar(c) {
		return rec == nil || rec.State != StateRunning
	}
	if init && rec != nil && rec.State == StateExited && rec.ExitCode == 0 {
		return false
	}
	return shouldRestart(pod.Spec.RestartPolicy, rec)
}

// containerState renders a record as a container state.
func containerState(in statusInput, c *corev1.Container, rec *ContainerStatus) corev1.ContainerState {
	switch rec.State {
	case StateRunning:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(rec.StartedAt)}}
	case StateExited:
		reason := rec.Reason
		if reason == "" {
			reason = "Completed"
			if rec.ExitCode != 0 {
				reason = "Error"
			}
		}
		t := &corev1.ContainerStateTerminated{
			ExitCode:   int32(rec.ExitCode),
			Reason:     reason,
			StartedAt:  metav1.NewTime(rec.StartedAt),
			FinishedAt: metav1.NewTime(rec.FinishedAt),
		}
		if rec.ID != "" {
			t.ContainerID = containerID(rec.ID)
		}
		if in.message != nil {
			t.Message = in.message(c, rec)
		}
		return corev1.ContainerState{Terminated: t}
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
}

// containerID is a container's ID as the API shows it.
func containerID(id string) string { return "skiff://" + id }

// podPhase is the kubelet's getPhase (without the alpha container
// restart rules).
func podPhase(pod *corev1.Pod, info []corev1.ContainerStatus, terminal, initialized bool) corev1.PodPhase {
	spec := &pod.Spec
	find := func(name string) (corev1.ContainerStatus, bool) {
		for _, s := range info {
			if s.Name == name {
				return s, true
			}
		}
		return corev1.ContainerStatus{}, false
	}
	pendingInit, pendingSidecars, failedInit := 0, 0, 0
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		st, ok := find(c.Name)
		if isSidecar(c) {
			switch {
			case !ok:
				unknown++
			case st.State.Running != nil:
				if st.Started == nil || !*st.Started {
					pendingSidecars++
				}
				running++
			case st.State.Terminated != nil:
			case st.State.Waiting != nil:
				if st.LastTerminationState.Terminated == nil {
					pendingSidecars++
					waiting++
				}
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		switch {
		case !ok, st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			if st.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case st.State.Waiting != nil:
			if t := st.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	for _, c := range spec.Containers {
		st, ok := find(c.Name)
		switch {
		case !ok:
			unknown++
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case st.State.Waiting != nil:
			if st.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !initialized), waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		if spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// readyCondition is ContainersReady or Ready (before readiness gates):
// true when every app container and native sidecar is ready.
func readyCondition(pod *corev1.Pod, info []corev1.ContainerStatus, phase corev1.PodPhase, typ corev1.PodConditionType) corev1.PodCondition {
	switch phase {
	case corev1.PodSucceeded:
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: "PodCompleted"}
	case corev1.PodFailed:
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: "PodFailed"}
	}
	var unknown, unready []string
	check := func(name string) {
		for _, s := range info {
			if s.Name == name {
				if !s.Ready {
					unready = append(unready, name)
				}
				return
			}
		}
		unknown = append(unknown, name)
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			check(pod.Spec.InitContainers[i].Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		check(c.Name)
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: strings.Join(msgs, ", ")}
	}
	return corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue}
}

// readinessGates turns a true Ready condition false while a readiness
// gate's condition is missing or not true.
func readinessGates(pod *corev1.Pod, conds []corev1.PodCondition, ready corev1.PodCondition) corev1.PodCondition {
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range conds {
			if conds[i].Type == g.ConditionType {
				found = &conds[i]
			}
		}
		switch {
		case found == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case found.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, found.Status))
		}
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ReadinessGatesNotReady", Message: strings.Join(msgs, ", ")}
	}
	return ready
}

// initializedCondition is true once every init container finished (or,
// for sidecars, started), or once the pod was initialized before.
func initializedCondition(pod *corev1.Pod, info []corev1.ContainerStatus, phase corev1.PodPhase, initialized bool) corev1.PodCondition {
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		var st *corev1.ContainerStatus
		for j := range info {
			if info[j].Name == c.Name {
				st = &info[j]
			}
		}
		switch {
		case st == nil:
			unknown = append(unknown, c.Name)
		case isSidecar(c) && (st.Started == nil || !*st.Started):
			incomplete = append(incomplete, c.Name)
		case !isSidecar(c) && !st.Ready:
			incomplete = append(incomplete, c.Name)
		}
	}
	if phase == corev1.PodSucceeded && len(unknown) == 0 {
		return corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, Reason: "PodCompleted"}
	}
	if initialized {
		return corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, Reason: "ContainersNotInitialized", Message: strings.Join(msgs, ", ")}
	}
	return corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
}

// writeStatus computes the pod's status and writes it through the status
// subresource when it changed.
func (a *Agent) writeStatus(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus, sb *Sandbox, terminal bool) {
	in := statusInput{
		pod:        pod,
		containers: groupContainers(records),
		reasons:    w.reasons,
		message:    func(c *corev1.Container, rec *ContainerStatus) string { return a.terminationMessage(w, pod, c, rec) },
		probes:     w,
		ready:      w.ready,
		sandbox:    sb,
		hostIP:     a.hostIP(),
		terminal:   terminal,
		failure:    w.failure,
		now:        metav1.NewTime(a.clock.Now()),
	}
	for attempt := 0; attempt < 5; attempt++ {
		st := buildStatus(in)
		if equality.Semantic.DeepEqual(st, in.pod.Status) {
			return
		}
		// The cache may not show our last write yet: do not write the
		// same status again until the periodic sync.
		if w.statusWritten != nil && equality.Semantic.DeepEqual(st, *w.statusWritten) &&
			a.clock.Since(w.writtenAt) < a.opts.SyncFrequency {
			return
		}
		next := in.pod.DeepCopy()
		next.Status = st
		_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		switch {
		case err == nil:
			w.statusWritten, w.writtenAt = &st, a.clock.Now()
			return
		case apierrors.IsConflict(err):
			fresh, gerr := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if gerr != nil || fresh.UID != pod.UID {
				return
			}
			if fresh.DeletionTimestamp != nil && !terminal {
				// Deleted meanwhile: the worker's next sync stops it and
				// writes the final status. (Skiff's API server deletes a
				// terminating pod on any update.)
				return
			}
			in.pod = fresh
		default:
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				a.log.Warn("writing pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
			return
		}
	}
}
