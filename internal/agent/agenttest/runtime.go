// Package agenttest has a fake pod runtime for tests of the node agent
// (package agent) and of what runs it: sandboxes and containers that live
// in memory, with exits, OOM kills, start failures, exec results and
// stop behaviour scripted by the test, and a log of the calls made. Only
// tests import it.
package agenttest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// Behavior scripts what a container does once started.
type Behavior struct {
	// StartErr makes CreateAndStart fail with it (nothing is recorded).
	StartErr error
	// ExitAfter makes the container exit on its own that long after it
	// started, with ExitCode (and Reason OOMKilled when OOM); 0 keeps it
	// running until stopped or Exit is called.
	ExitAfter time.Duration
	ExitCode  int
	OOM       bool
	// IgnoreSIGTERM makes Stop wait the whole grace and SIGKILL it (exit
	// 137); otherwise it exits 143 at once.
	IgnoreSIGTERM bool
	// TerminationMessage is written to the container's termination
	// message file when it exits.
	TerminationMessage string
	// Log is written to the container's log file (CRI format, stdout)
	// when it starts.
	Log string
}

// ExecResult is what an exec returns.
type ExecResult struct {
	Code   int
	Output string
	Err    error
	// Delay makes the exec take that long (or until its ctx ends).
	Delay time.Duration
}

// Runtime is an in-memory pod runtime. The zero value is not usable: use
// NewRuntime. Its methods are safe for concurrent use.
type Runtime struct {
	// Dir holds termination-message and log files.
	Dir string
	// PodIP is the IP sandboxes get (default 127.0.0.1, so that probes
	// dial the test's loopback servers).
	PodIP string

	mu         sync.Mutex
	images     map[string]string // present: ref → ID
	pullable   map[string]bool
	pullErr    map[string]error
	behavior   func(c podruntime.ContainerConfig) Behavior
	exec       func(c podruntime.ContainerStatus, cmd []string) ExecResult
	sandboxes  map[string]podruntime.Sandbox
	containers map[string]*fakeContainer
	calls      []string
	next       int
}

type fakeContainer struct {
	status   podruntime.ContainerStatus
	cfg      podruntime.ContainerConfig
	behavior Behavior
	exited   chan struct{}
	timer    *time.Timer
}

// NewRuntime returns a fake runtime keeping its files under dir.
func NewRuntime(dir string) *Runtime {
	return &Runtime{
		Dir:        dir,
		PodIP:      "127.0.0.1",
		images:     map[string]string{},
		pullable:   map[string]bool{},
		pullErr:    map[string]error{},
		behavior:   func(podruntime.ContainerConfig) Behavior { return Behavior{} },
		exec:       func(podruntime.ContainerStatus, []string) ExecResult { return ExecResult{} },
		sandboxes:  map[string]podruntime.Sandbox{},
		containers: map[string]*fakeContainer{},
	}
}

// AddImage makes ref present.
func (r *Runtime) AddImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[ref] = imageID(ref)
}

// imageID makes up an image ID for a reference.
func imageID(ref string) string {
	sum := 0
	for _, c := range ref {
		sum = sum*31 + int(c)
	}
	return fmt.Sprintf("sha256:%064x", uint64(sum))
}

// imageLocked finds a present image by reference or ID.
func (r *Runtime) imageLocked(refOrID string) (string, bool) {
	if id, ok := r.images[refOrID]; ok {
		return id, true
	}
	for _, id := range r.images {
		if id == refOrID {
			return id, true
		}
	}
	return "", false
}

// Pullable makes ref pullable from a (fake) registry.
func (r *Runtime) Pullable(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullable[ref] = true
}

// FailPull makes pulls of ref fail with err.
func (r *Runtime) FailPull(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullErr[ref] = err
}

// SetBehavior scripts the containers started from now on.
func (r *Runtime) SetBehavior(f func(c podruntime.ContainerConfig) Behavior) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behavior = f
}

// SetExec scripts execs.
func (r *Runtime) SetExec(f func(c podruntime.ContainerStatus, cmd []string) ExecResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exec = f
}

// Calls is the log of calls that changed something, e.g.
// "CreateAndStart web 0", "Exec web [sh -c x]", "Stop web", "Remove web",
// "RunSandbox", "RemoveSandbox", "Pull busybox".
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *Runtime) record(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

// Exit makes the pod's running container name exit with code (OOMKilled
// when oom).
func (r *Runtime) Exit(podUID, name string, code int, oom bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.containers {
		if c.status.PodUID == podUID && c.status.Name == name && c.status.State == podruntime.StateRunning {
			r.exitLocked(c, code, oom)
			return nil
		}
	}
	return fmt.Errorf("no running container %s in pod %s", name, podUID)
}

// Running lists the pod's running containers.
func (r *Runtime) Running(podUID string) []podruntime.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []podruntime.ContainerStatus
	for _, c := range r.containers {
		if c.status.PodUID == podUID && c.status.State == podruntime.StateRunning {
			out = append(out, c.status)
		}
	}
	return out
}

// Config is the configuration the pod's newest container name was
// created with.
func (r *Runtime) Config(podUID, name string) (podruntime.ContainerConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *fakeContainer
	for _, c := range r.containers {
		if c.status.PodUID == podUID && c.status.Name == name && (best == nil || c.status.Attempt > best.status.Attempt) {
			best = c
		}
	}
	if best == nil {
		return podruntime.ContainerConfig{}, false
	}
	return best.cfg, true
}

func (r *Runtime) exitLocked(c *fakeContainer, code int, oom bool) {
	if c.status.State != podruntime.StateRunning {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.status.State = podruntime.StateExited
	c.status.ExitCode = code
	c.status.FinishedAt = time.Now()
	c.status.Pid = 0
	switch {
	case oom:
		c.status.Reason = podruntime.ReasonOOMKilled
	case code == 0:
		c.status.Reason = podruntime.ReasonCompleted
	default:
		c.status.Reason = podruntime.ReasonError
	}
	if c.behavior.TerminationMessage != "" && c.status.TerminationMessagePath != "" {
		os.WriteFile(c.status.TerminationMessagePath, []byte(c.behavior.TerminationMessage), 0o644)
	}
	close(c.exited)
}

// RunSandbox implements agent.Runtime.
func (r *Runtime) RunSandbox(ctx context.Context, c podruntime.SandboxConfig) (podruntime.Sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sb, ok := r.sandboxes[c.PodUID]; ok {
		return sb, nil
	}
	r.next++
	sb := podruntime.Sandbox{ID: fmt.Sprintf("sb%d", r.next), IP: r.PodIP, PodUID: c.PodUID, Namespace: c.Namespace,
		Name: c.Name, Hostname: c.Hostname, HostNetwork: c.HostNetwork, Ready: true, CreatedAt: time.Now()}
	r.sandboxes[c.PodUID] = sb
	r.record("RunSandbox %s", c.Name)
	return sb, nil
}

// RemoveSandbox implements agent.Runtime.
func (r *Runtime) RemoveSandbox(ctx context.Context, podUID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.containers {
		if c.status.PodUID == podUID {
			return fmt.Errorf("pod %s still has container %s: %w", podUID, c.status.Name, errdefs.ErrConflict)
		}
	}
	if sb, ok := r.sandboxes[podUID]; ok {
		delete(r.sandboxes, podUID)
		r.record("RemoveSandbox %s", sb.Name)
	}
	return nil
}

// Sandbox implements agent.Runtime.
func (r *Runtime) Sandbox(podUID string) (podruntime.Sandbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb, ok := r.sandboxes[podUID]
	return sb, ok
}

// Sandboxes implements agent.Runtime.
func (r *Runtime) Sandboxes() []podruntime.Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []podruntime.Sandbox
	for _, sb := range r.sandboxes {
		out = append(out, sb)
	}
	return out
}

// EnsureImage implements agent.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy corev1.PullPolicy, auth []podruntime.Credential) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.images[ref]; ok && policy != corev1.PullAlways {
		return id, nil
	}
	if policy == corev1.PullNever {
		return "", fmt.Errorf("container image %q is not present with pull policy of Never: %w", ref, errdefs.ErrNotFound)
	}
	r.record("Pull %s", ref)
	if err := r.pullErr[ref]; err != nil {
		return "", fmt.Errorf("failed to pull image %q: %w", ref, err)
	}
	if _, ok := r.images[ref]; !ok && !r.pullable[ref] {
		return "", fmt.Errorf("failed to pull image %q: %s: manifest unknown: %w", ref, ref, errdefs.ErrNotFound)
	}
	r.images[ref] = imageID(ref)
	return r.images[ref], nil
}

// CreateAndStart implements agent.Runtime.
func (r *Runtime) CreateAndStart(ctx context.Context, cfg podruntime.ContainerConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sandboxes[cfg.PodUID]; !ok {
		return "", fmt.Errorf("pod %s has no sandbox: %w", cfg.PodUID, errdefs.ErrNotFound)
	}
	for _, c := range r.containers {
		if c.status.PodUID == cfg.PodUID && c.status.Name == cfg.Name && c.status.Attempt == cfg.Attempt {
			return "", fmt.Errorf("container %s attempt %d exists: %w", cfg.Name, cfg.Attempt, errdefs.ErrAlreadyExists)
		}
	}
	id, ok := r.imageLocked(cfg.Image)
	if !ok {
		return "", fmt.Errorf("image %q is not present: %w", cfg.Image, errdefs.ErrNotFound)
	}
	b := r.behavior(cfg)
	r.record("CreateAndStart %s %d", cfg.Name, cfg.Attempt)
	if b.StartErr != nil {
		return "", b.StartErr
	}
	r.next++
	imgID := id
	id = fmt.Sprintf("c%d-%s", r.next, cfg.Name)
	dir := filepath.Join(r.Dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	st := podruntime.ContainerStatus{
		ID: id, PodUID: cfg.PodUID, SandboxID: r.sandboxes[cfg.PodUID].ID, Name: cfg.Name, Attempt: cfg.Attempt,
		Image: cfg.Image, ImageRef: cfg.Image, ImageID: imgID, State: podruntime.StateRunning, Pid: 1000 + r.next,
		CreatedAt: time.Now(), StartedAt: time.Now(), LogPath: filepath.Join(dir, "0.log"), Labels: cfg.Labels,
	}
	if cfg.TerminationMessagePath != "" {
		st.TerminationMessagePath = filepath.Join(dir, "termination-log")
		os.WriteFile(st.TerminationMessagePath, nil, 0o666)
	}
	log := ""
	for _, line := range strings.SplitAfter(b.Log, "\n") {
		if line != "" {
			log += time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + strings.TrimSuffix(line, "\n") + "\n"
		}
	}
	os.WriteFile(st.LogPath, []byte(log), 0o644)
	c := &fakeContainer{status: st, cfg: cfg, behavior: b, exited: make(chan struct{})}
	r.containers[id] = c
	if b.ExitAfter > 0 {
		c.timer = time.AfterFunc(b.ExitAfter, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.exitLocked(c, b.ExitCode, b.OOM)
		})
	}
	return id, nil
}

// Stop implements agent.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	if c.status.State != podruntime.StateRunning {
		r.mu.Unlock()
		return nil
	}
	r.record("Stop %s", c.status.Name)
	if !c.behavior.IgnoreSIGTERM {
		r.exitLocked(c, 128+int(syscall.SIGTERM), false)
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exitLocked(c, 128+int(syscall.SIGKILL), false)
	return nil
}

// Remove implements agent.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil
	}
	r.exitLocked(c, 137, false)
	delete(r.containers, id)
	os.RemoveAll(filepath.Join(r.Dir, id))
	r.record("Remove %s %d", c.status.Name, c.status.Attempt)
	return nil
}

// List implements agent.Runtime.
func (r *Runtime) List(ctx context.Context, podUID string) ([]podruntime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []podruntime.ContainerStatus
	for _, c := range r.containers {
		if podUID == "" || c.status.PodUID == podUID {
			out = append(out, c.status)
		}
	}
	slices.SortFunc(out, func(a, b podruntime.ContainerStatus) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		return a.Attempt - b.Attempt
	})
	return out, nil
}

// Wait implements agent.Runtime.
func (r *Runtime) Wait(ctx context.Context, id string) (podruntime.ContainerStatus, error) {
	r.mu.Lock()
	c, ok := r.containers[id]
	r.mu.Unlock()
	if !ok {
		return podruntime.ContainerStatus{}, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		return podruntime.ContainerStatus{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return c.status, nil
}

// Exec implements agent.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, s runtime.Streams, tty bool, resize <-chan [2]uint16) (int, error) {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return 0, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	if c.status.State != podruntime.StateRunning {
		r.mu.Unlock()
		return 0, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
	}
	r.record("Exec %s %v", c.status.Name, cmd)
	st, exec := c.status, r.exec
	r.mu.Unlock()
	res := exec(st, cmd)
	if res.Delay > 0 {
		select {
		case <-time.After(res.Delay):
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	if s.Stdout != nil {
		io.WriteString(s.Stdout, res.Output)
	}
	return res.Code, res.Err
}
