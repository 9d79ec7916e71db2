package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

// Reasons a container waits with after a failed start, as the kubelet
// names them.
const (
	reasonErrImagePull          = "ErrImagePull"
	reasonImagePullBackOff      = "ImagePullBackOff"
	reasonErrImageNeverPull     = "ErrImageNeverPull"
	reasonCreateContainerConfig = "CreateContainerConfigError"
	reasonRunContainerError     = "RunContainerError"
	reasonPostStartHookError    = "PostStartHookError"
	reasonCrashLoopBackOff      = "CrashLoopBackOff"
	reasonStartError            = "StartError"
)

// startOutcome says how a start went and when to look again.
type startOutcome struct {
	started bool
	// again: sync again at once.
	again bool
	// retry: sync again after this long.
	retry time.Duration
}

// startContainer starts one container: image, configuration, create and
// start, postStart hook. A failure is kept as the container's Waiting
// reason (and an event).
func (a *Agent) startContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *Sandbox, step startStep) startOutcome {
	c := step.c
	fail := func(reason, message string, out startOutcome) startOutcome {
		w.reasons[c.Name] = waitingReason{Reason: reason, Message: message}
		return out
	}
	imageID, why, retry := a.pullImage(ctx, pod, c)
	if why != nil {
		a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %s", why.Reason)
		if why.Reason == reasonErrImagePull {
			// ErrImagePull stays on show for half the back-off window;
			// the sync after that shows ImagePullBackOff until the
			// window ends (as the kubelet's users see it).
			retry = max(retry/2, time.Millisecond)
		}
		return fail(why.Reason, why.Message, startOutcome{retry: retry})
	}
	cfg, err := a.containerConfig(ctx, pod, sb, c, step.attempt)
	if err != nil {
		msg := errdefs.Message(err)
		a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %s", msg)
		return fail(reasonCreateContainerConfig, msg, startOutcome{retry: a.opts.BackOffInitial})
	}
	cfg.Image = imageID
	if cfg.Image == "" {
		cfg.Image = c.Image
	}
	id, err := a.rt.CreateAndStart(ctx, cfg)
	if err != nil {
		msg := errdefs.Message(err)
		reason := reasonRunContainerError
		if errors.Is(err, errdefs.ErrInvalid) && strings.Contains(msg, "runAsNonRoot") {
			reason = reasonCreateContainerConfig
		}
		a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %s", msg)
		if reason != reasonRunContainerError {
			return fail(reason, msg, startOutcome{retry: a.opts.BackOffInitial})
		}
		now := a.clock.Now()
		w.failedStarts[c.Name] = ContainerStatus{PodUID: string(pod.UID), Name: c.Name, Attempt: step.attempt, State: StateExited,
			ExitCode: 128, Reason: reasonStartError, Message: msg, StartedAt: now, FinishedAt: now, Image: c.Image, ImageID: imageID}
		// The failed attempt counts as exited: the next sync applies the
		// restart policy and back-off to it.
		return fail(reason, msg, startOutcome{again: true})
	}
	delete(w.reasons, c.Name)
	delete(w.failedStarts, c.Name)
	a.event(pod, c.Name, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	a.event(pod, c.Name, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	a.watchExit(ctx, w, id)

	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if err := a.runHook(ctx, pod, c, id, c.Lifecycle.PostStart); err != nil {
			msg := fmt.Sprintf("PostStartHook failed: %v", err)
			a.event(pod, c.Name, corev1.EventTypeWarning, "FailedPostStartHook", "%s", msg)
			a.killContainer(ctx, pod, killStep{rec: ContainerStatus{ID: id, Name: c.Name}, message: "FailedPostStartHook"},
				a.clock.Now().Add(a.containerGrace(pod, nil)))
			return fail(reasonPostStartHookError, msg, startOutcome{again: true})
		}
	}
	return startOutcome{started: true}
}

// pullImage makes the container's image present per its pull policy,
// with the kubelet's events, and ImagePullBackOff between failed pulls.
func (a *Agent) pullImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (string, *waitingReason, time.Duration) {
	policy := pullPolicy(c)
	if policy != corev1.PullAlways {
		id, err := a.rt.EnsureImage(ctx, c.Image, corev1.PullNever, nil)
		if err == nil {
			a.event(pod, c.Name, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
			return id, nil, 0
		}
		if !errors.Is(err, errdefs.ErrNotFound) {
			return "", &waitingReason{Reason: reasonErrImagePull, Message: errdefs.Message(err)}, a.opts.BackOffInitial
		}
		if policy == corev1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			a.event(pod, c.Name, corev1.EventTypeWarning, reasonErrImageNeverPull, "%s", msg)
			return "", &waitingReason{Reason: reasonErrImageNeverPull, Message: msg}, a.opts.BackOffMax
		}
	}
	key := string(pod.UID) + "/" + c.Image
	if d := a.imageBackOff.waitSinceRetry(key); d > 0 {
		a.event(pod, c.Name, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		if last, ok := a.lastPullError(key); ok {
			msg += ": " + reasonErrImagePull + ": " + last
		}
		return "", &waitingReason{Reason: reasonImagePullBackOff, Message: msg}, d
	}
	a.event(pod, c.Name, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := a.clock.Now()
	creds := a.pullCredentials(ctx, pod)
	id, err := a.rt.EnsureImage(ctx, c.Image, policy, creds)
	if err != nil {
		msg := errdefs.Message(err)
		a.imageBackOff.next(key, a.clock.Now())
		a.setPullError(key, msg)
		a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", c.Image, msg)
		return "", &waitingReason{Reason: reasonErrImagePull, Message: msg}, a.imageBackOff.window(key)
	}
	a.imageBackOff.forget(key)
	a.setPullError(key, "")
	took := a.clock.Since(start).Round(time.Millisecond)
	a.event(pod, c.Name, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s (%s including waiting)", c.Image, took, took)
	return id, nil, 0
}

func (a *Agent) lastPullError(key string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	msg, ok := a.pullErrors[key]
	return msg, ok
}

func (a *Agent) setPullError(key, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if msg == "" {
		delete(a.pullErrors, key)
		return
	}
	a.pullErrors[key] = msg
}

// pullPolicy is the container's imagePullPolicy, defaulted as the API
// server does: Always for :latest or untagged images, else IfNotPresent.
func pullPolicy(c *corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	ref := c.Image
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return corev1.PullIfNotPresent
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash || strings.HasSuffix(ref, ":latest") {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
