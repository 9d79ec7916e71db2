package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/errdefs"
)

// syncPod reconciles one pod: it runs it, or finishes it when it is being
// deleted or is gone from the API.
func (a *Agent) syncPod(ctx context.Context, w *podWorker) (syncResult, error) {
	pod := a.lookup(w.key)
	if pod != nil {
		w.pod = pod
	}
	records, err := a.listContainers(ctx, w)
	if err != nil {
		return syncResult{}, err
	}
	switch {
	case pod == nil:
		return a.finishPod(ctx, w, records, false)
	case pod.DeletionTimestamp != nil:
		return a.finishPod(ctx, w, records, true)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return a.syncTerminal(ctx, w, pod, records)
	}
	return a.runPod(ctx, w, pod, records)
}

// lookup finds the worker's pod in the cache; nil when it is gone (or
// replaced by another pod of the same name).
func (a *Agent) lookup(key podKey) *corev1.Pod {
	if key.Name == "" {
		return nil
	}
	pod, err := a.podLister.Pods(key.Namespace).Get(key.Name)
	if err != nil || pod.UID != key.UID {
		return nil
	}
	return pod
}

// listContainers lists the pod's containers, with the starts that failed
// before the runtime recorded anything.
func (a *Agent) listContainers(ctx context.Context, w *podWorker) ([]ContainerStatus, error) {
	records, err := a.rt.List(ctx, string(w.key.UID))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for name, f := range w.failedStarts {
		shadowed := false
		for _, r := range records {
			if r.Name == name && r.Attempt >= f.Attempt {
				shadowed = true
			}
		}
		if shadowed {
			delete(w.failedStarts, name)
			continue
		}
		records = append(records, f)
	}
	return records, nil
}

// runPod drives a live pod towards its spec.
func (a *Agent) runPod(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus) (syncResult, error) {
	var res syncResult
	if err := a.makePodDirs(pod.UID); err != nil {
		return res, err
	}
	sb, err := a.ensureSandbox(ctx, w, pod, records)
	if err != nil {
		a.event(pod, "", corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		a.writeStatus(ctx, w, pod, records, nil, false)
		return res, err
	}
	if err := a.setUpMesh(ctx, w, pod, sb); err != nil {
		a.event(pod, "", corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to set up the pod's mesh: %v", err)
		a.writeStatus(ctx, w, pod, records, sb, false)
		return res, err
	}
	if err := a.setUpVolumes(ctx, pod); err != nil {
		a.writeStatus(ctx, w, pod, records, sb, false)
		return res, err
	}
	if !w.seeded {
		a.seedProbes(w, pod, records)
		w.seeded = true
	}

	if left, ok := a.deadlineLeft(pod); ok && left <= 0 {
		return a.failPod(ctx, w, pod, records, sb, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
	} else if ok {
		res.soonest(left)
	}

	v := groupContainers(records)
	p := planPod(pod, v, w, func(c *corev1.Container, prev *ContainerStatus) time.Duration {
		return a.crashBackOff.wait(backOffKey(pod, c), prev.FinishedAt)
	})
	changed := false
	if len(p.kill) > 0 {
		a.killContainers(ctx, w, pod, p.kill, a.containerGrace(pod, nil))
		changed = true
	}
	for name, d := range p.wait {
		c := containerByName(pod, name)
		a.event(pod, name, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", name, podDesc(pod))
		w.reasons[name] = waitingReason{Reason: "CrashLoopBackOff", Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", a.crashBackOff.window(backOffKey(pod, c)), name, podDesc(pod))}
		res.soonest(d)
	}
	for _, step := range p.start {
		if step.prev != nil && step.prev.State == StateExited {
			a.crashBackOff.next(backOffKey(pod, step.c), step.prev.FinishedAt)
		}
		out := a.startContainer(ctx, w, pod, sb, step)
		res.soonest(out.retry)
		res.again = res.again || out.again || out.started
		changed = true
	}
	if changed {
		if records, err = a.listContainers(ctx, w); err != nil {
			return res, err
		}
		// A kill leaves a container to restart; a start may let the next
		// init container go: look again.
		res.again = res.again || len(p.kill) > 0
	}
	a.removeOldAttempts(ctx, records)
	w.pruneMessages(records)
	a.watchRunning(ctx, w, records)
	a.syncProbes(ctx, w, pod, records, sb)
	a.writeStatus(ctx, w, pod, records, sb, p.terminal && len(groupContainers(records).running()) == 0)
	return res, nil
}

// deadlineLeft is the time left of the pod's activeDeadlineSeconds,
// counted from its start (ok is false when it has none).
func (a *Agent) deadlineLeft(pod *corev1.Pod) (time.Duration, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return 0, false
	}
	end := pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second)
	return end.Sub(a.clock.Now()), true
}

// failPod ends a pod the kubelet's way for reasons of its own (an active
// deadline): its containers stop and it is Failed with reason and
// message.
func (a *Agent) failPod(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus, sb *Sandbox, reason, message string) (syncResult, error) {
	a.event(pod, "", corev1.EventTypeWarning, reason, "%s", message)
	w.stopAll()
	var steps []killStep
	for _, r := range groupContainers(records).running() {
		steps = append(steps, killStep{rec: r, message: "Stopping container " + r.Name})
	}
	a.killPod(ctx, w, pod, steps, a.podGrace(pod))
	records, err := a.listContainers(ctx, w)
	if err != nil {
		return syncResult{}, err
	}
	w.failure = &waitingReason{Reason: reason, Message: message}
	a.writeStatus(ctx, w, pod, records, sb, true)
	return syncResult{}, nil
}

// syncTerminal keeps a pod the API shows Succeeded or Failed finished:
// nothing restarts, anything still running stops.
func (a *Agent) syncTerminal(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus) (syncResult, error) {
	w.stopAll()
	running := groupContainers(records).running()
	if len(running) == 0 {
		return syncResult{}, nil
	}
	var steps []killStep
	for _, r := range running {
		steps = append(steps, killStep{rec: r, message: "Stopping container " + r.Name})
	}
	a.killContainers(ctx, w, pod, steps, a.containerGrace(pod, nil))
	records, err := a.listContainers(ctx, w)
	if err != nil {
		return syncResult{}, err
	}
	sb, _ := a.rt.Sandbox(string(pod.UID))
	a.writeStatus(ctx, w, pod, records, &sb, true)
	return syncResult{}, nil
}

// finishPod stops and removes everything of a pod that is being deleted
// (then deletes the pod object) or is gone from the API.
func (a *Agent) finishPod(ctx context.Context, w *podWorker, records []ContainerStatus, deleting bool) (syncResult, error) {
	w.stopAll()
	pod := w.pod
	var steps []killStep
	for _, r := range groupContainers(records).running() {
		steps = append(steps, killStep{rec: r, message: "Stopping container " + r.Name})
	}
	if len(steps) > 0 {
		grace := a.opts.MinGracePeriod
		if pod != nil {
			grace = a.podGrace(pod)
		}
		a.killPod(ctx, w, pod, steps, grace)
		var err error
		if records, err = a.listContainers(ctx, w); err != nil {
			return syncResult{}, err
		}
	}
	if len(groupContainers(records).running()) > 0 {
		return syncResult{}, errors.New("containers still running after stop")
	}
	if err := a.cleanupPod(ctx, w, records); err != nil {
		return syncResult{}, err
	}
	if deleting && pod != nil {
		// The final status (the containers as they ended), then the
		// object goes.
		a.writeStatus(ctx, w, pod, records, nil, true)
		zero := int64(0)
		uid := pod.UID
		err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOptions(&zero, &uid))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return syncResult{}, fmt.Errorf("delete pod: %w", err)
		}
		a.log.Info("pod deleted", "pod", pod.Namespace+"/"+pod.Name)
	}
	return syncResult{finished: true}, nil
}

// cleanupPod removes the pod's containers, sandbox, volumes and
// directory.
func (a *Agent) cleanupPod(ctx context.Context, w *podWorker, records []ContainerStatus) error {
	w.unwatch(nil)
	uid := string(w.key.UID)
	for _, r := range records {
		if r.ID == "" {
			continue
		}
		if err := a.rt.Remove(ctx, r.ID); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove container %s: %w", r.Name, err)
		}
	}
	if err := a.tearDownMesh(ctx, w); err != nil {
		return err
	}
	if err := a.rt.RemoveSandbox(ctx, uid); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove sandbox: %w", err)
	}
	if err := a.tearDownPodDir(w.key.UID); err != nil {
		return err
	}
	for _, name := range containerNames(w.pod) {
		a.crashBackOff.forget(string(w.key.UID) + "/" + name)
	}
	a.forgetPod(w.key.UID)
	return nil
}

// ensureSandbox returns the pod's sandbox, creating it when missing.
// Containers left from a sandbox that is gone are stopped first: they
// restart in the new one.
func (a *Agent) ensureSandbox(ctx context.Context, w *podWorker, pod *corev1.Pod, records []ContainerStatus) (*Sandbox, error) {
	if sb, ok := a.rt.Sandbox(string(pod.UID)); ok && sb.Ready {
		return &sb, nil
	}
	if running := groupContainers(records).running(); len(running) > 0 {
		var steps []killStep
		for _, r := range running {
			steps = append(steps, killStep{rec: r, message: "Stopping container " + r.Name})
		}
		a.killContainers(ctx, w, pod, steps, a.opts.MinGracePeriod)
	}
	sb, err := a.rt.RunSandbox(ctx, a.sandboxConfig(pod))
	if err != nil {
		return nil, err
	}
	return &sb, nil
}

// removeOldAttempts keeps the newest two attempts of each container (the
// current one and the one its lastState and `logs --previous` show).
func (a *Agent) removeOldAttempts(ctx context.Context, records []ContainerStatus) {
	for _, list := range groupContainers(records) {
		for _, r := range list[min(2, len(list)):] {
			if r.ID == "" || r.State == StateRunning {
				continue
			}
			if err := a.rt.Remove(ctx, r.ID); err != nil && !isNotFound(err) {
				a.log.Warn("removing an old container", "id", r.ID, "err", err)
			}
		}
	}
}

// pruneMessages forgets the termination messages of removed containers.
func (w *podWorker) pruneMessages(records []ContainerStatus) {
	if len(w.messages) <= len(records) {
		return
	}
	keep := map[string]bool{}
	for _, r := range records {
		keep[r.ID] = true
	}
	for id := range w.messages {
		if !keep[id] {
			delete(w.messages, id)
		}
	}
}

// watchRunning makes sure an exit of each running container wakes the
// worker.
func (a *Agent) watchRunning(ctx context.Context, w *podWorker, records []ContainerStatus) {
	keep := map[string]bool{}
	for _, r := range records {
		if r.State == StateRunning && r.ID != "" {
			keep[r.ID] = true
			a.watchExit(ctx, w, r.ID)
		}
	}
	w.unwatch(keep)
}

// backOffKey names a container's restart back-off.
func backOffKey(pod *corev1.Pod, c *corev1.Container) string {
	return string(pod.UID) + "/" + c.Name
}

// podDesc is how the kubelet names a pod in messages: name_ns(uid).
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

func containerByName(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

func containerNames(pod *corev1.Pod) []string {
	if pod == nil {
		return nil
	}
	var out []string
	for _, c := range pod.Spec.InitContainers {
		out = append(out, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

func isInit(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// podGrace is how long the pod's containers get to stop on deletion.
func (a *Agent) podGrace(pod *corev1.Pod) time.Duration {
	secs := int64(30)
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		secs = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		secs = *pod.Spec.TerminationGracePeriodSeconds
	}
	return max(time.Duration(secs)*time.Second, a.opts.MinGracePeriod)
}

// containerGrace is how long a container stopped while the pod lives
// (liveness failure, restart policy) gets: the probe's
// terminationGracePeriodSeconds or the pod's.
func (a *Agent) containerGrace(pod *corev1.Pod, probe *corev1.Probe) time.Duration {
	secs := int64(30)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		secs = *pod.Spec.TerminationGracePeriodSeconds
	}
	if probe != nil && probe.TerminationGracePeriodSeconds != nil {
		secs = *probe.TerminationGracePeriodSeconds
	}
	return max(time.Duration(secs)*time.Second, a.opts.MinGracePeriod)
}

// deleteOptions deletes with a grace period and a UID precondition.
func deleteOptions(grace *int64, uid *types.UID) metav1.DeleteOptions {
	return metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: uid}}
}

// isNotFound tells a runtime's or the API's "not found".
func isNotFound(err error) bool {
	return errors.Is(err, errdefs.ErrNotFound) || apierrors.IsNotFound(err)
}
