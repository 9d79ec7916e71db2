package podruntime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// ContainerStatus is a container as the kubelet reports it.
type ContainerStatus struct {
	ID, PodUID, SandboxID, Name string
	Attempt                     int
	// Image is the reference the container was created with, ImageRef
	// its normalised name (or the image ID when it was given by ID) and
	// ImageID the image's config digest.
	Image, ImageRef, ImageID string
	State                    string // StateCreated, StateRunning or StateExited
	Pid                      int    // while running, in the node's PID namespace
	CreatedAt                time.Time
	StartedAt, FinishedAt    time.Time
	ExitCode                 int
	// Reason is set once exited: ReasonCompleted, ReasonError or
	// ReasonOOMKilled; Message says more where there is more to say (a
	// lost runtime state).
	Reason, Message string
	// LogPath is the container's CRI log file.
	LogPath string
	// TerminationMessagePath is the host file behind the container's
	// terminationMessagePath ("" when it has none).
	TerminationMessagePath string
	Labels                 map[string]string
}

// exitGone is recorded when the runtime no longer knows a container the
// record says runs: the node rebooted, or its shim was killed.
const exitGone = 255

// Status reports the container's state; errdefs.ErrNotFound for an
// unknown ID.
func (m *Manager) Status(ctx context.Context, id string) (ContainerStatus, error) {
	c, err := m.lookup(id)
	if err != nil {
		return ContainerStatus{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pid := m.refresh(ctx, c)
	return c.status(pid), nil
}

// refresh asks the runtime about a container recorded as running and
// records its exit when it has exited; it returns its pid while it runs.
// Call with c.mu held.
func (m *Manager) refresh(ctx context.Context, c *container) int {
	if c.rec.State != stateRunning {
		return 0
	}
	st, err := m.opts.Runtime.State(ctx, c.rec.ID)
	switch {
	case err == nil && st.Running:
		return st.Pid
	case err == nil && st.Exit != nil:
		m.recordExit(c, *st.Exit, "")
	case errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnavailable):
		m.recordExit(c, runtime.ExitStatus{Code: exitGone, FinishedAt: time.Now().UTC()},
			fmt.Sprintf("the container's runtime state is lost (%v)", err))
	default:
		m.log.Warn("container state", "id", c.rec.ID, "err", err)
	}
	return 0
}

// recordExit persists how the container exited and unmounts its root
// filesystem, which nothing needs any more. Call with c.mu held.
func (m *Manager) recordExit(c *container, st runtime.ExitStatus, message string) {
	if c.rec.Exit != nil {
		return
	}
	reason := ReasonError
	switch {
	case st.OOMKilled:
		reason = ReasonOOMKilled
	case st.Code == 0:
		reason = ReasonCompleted
	}
	if st.FinishedAt.IsZero() {
		st.FinishedAt = time.Now()
	}
	c.rec.State = stateExited
	c.rec.Exit = &exitRecord{Code: st.Code, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt.UTC(), Reason: reason, Message: message}
	if err := m.saveContainer(&c.rec); err != nil {
		m.log.Warn("save container", "id", c.rec.ID, "err", err)
	}
	m.releaseRootfs(c.rec.ID)
}

// status renders the record; call with c.mu held.
func (c *container) status(pid int) ContainerStatus {
	r := &c.rec
	s := ContainerStatus{
		ID: r.ID, PodUID: r.PodUID, SandboxID: r.SandboxID, Name: r.Name, Attempt: r.Attempt,
		Image: r.Image, ImageRef: r.ImageRef, ImageID: r.ImageID,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, LogPath: r.LogPath,
		TerminationMessagePath: r.TerminationLog, Labels: maps.Clone(r.Labels),
	}
	switch r.State {
	case stateCreating:
		s.State = StateCreated
	case stateRunning:
		s.State, s.Pid = StateRunning, pid
	default:
		s.State = StateExited
	}
	if e := r.Exit; e != nil {
		s.State = StateExited
		s.FinishedAt, s.ExitCode, s.Reason, s.Message = e.FinishedAt, e.Code, e.Reason, e.Message
	}
	return s
}

// List reports the pod's containers ("" for every pod), running and
// exited, sorted by pod, name and attempt. It reads what Start loaded, so
// it lists the same containers after the agent restarted.
func (m *Manager) List(ctx context.Context, podUID string) ([]ContainerStatus, error) {
	if err := m.checkStarted(); err != nil {
		return nil, err
	}
	var out []ContainerStatus
	for _, c := range m.podContainers(podUID) {
		s, err := m.Status(ctx, c.rec.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ContainerStatus) int {
		return cmp.Or(cmp.Compare(a.PodUID, b.PodUID), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Attempt, b.Attempt))
	})
	return out, nil
}

// Wait blocks until the container exited (or ctx ended) and returns its
// status.
func (m *Manager) Wait(ctx context.Context, id string) (ContainerStatus, error) {
	c, err := m.lookup(id)
	if err != nil {
		return ContainerStatus{}, err
	}
	if err := m.waitExit(ctx, c); err != nil {
		return ContainerStatus{}, err
	}
	return m.Status(ctx, id)
}

// waitExit waits for the runtime to report the exit and records it. An
// unknown container (never started, or its state lost) is not waited for.
func (m *Manager) waitExit(ctx context.Context, c *container) error {
	st, err := m.opts.Runtime.Wait(ctx, c.rec.ID)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		c.mu.Lock()
		if c.rec.State == stateRunning {
			m.recordExit(c, st, "")
		}
		c.mu.Unlock()
	}
	return nil
}

// Stop stops a running container: its stop signal (the image's
// STOPSIGNAL, else SIGTERM), then SIGKILL once grace has passed (at once
// for grace <= 0), and returns once it exited. Stopping an exited
// container is not an error.
func (m *Manager) Stop(ctx context.Context, id string, grace time.Duration) error {
	c, err := m.lookup(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.refresh(ctx, c)
	running, sig := c.rec.State == stateRunning, syscall.Signal(c.rec.StopSignal)
	c.mu.Unlock()
	if !running {
		return nil
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if grace > 0 {
		if err := m.kill(ctx, id, sig); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, grace)
		err := m.waitExit(wctx, c)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.log.Info("grace period over; killing", "id", id, "grace", grace)
	}
	if err := m.kill(ctx, id, syscall.SIGKILL); err != nil {
		return err
	}
	return m.waitExit(ctx, c)
}

// kill signals the container's init; one that is gone is fine.
func (m *Manager) kill(ctx context.Context, id string, sig syscall.Signal) error {
	err := m.opts.Runtime.Kill(ctx, id, sig)
	if err == nil || errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("signal %v to container %s: %w", sig, id, err)
}

// Remove removes a container: its runtime state, root filesystem,
// writable layer, record and log file. A running container is killed
// first (the kubelet normally stops it before). Removing an unknown
// container is not an error.
func (m *Manager) Remove(ctx context.Context, id string) error {
	c, err := m.lookup(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m.refresh(ctx, c)
	if c.rec.State == stateRunning {
		if err := m.kill(ctx, id, syscall.SIGKILL); err != nil {
			return err
		}
		st, err := m.opts.Runtime.Wait(ctx, id)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			m.recordExit(c, st, "")
		}
	}
	if err := m.opts.Runtime.Delete(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	m.releaseRootfs(id)
	if err := os.RemoveAll(m.containerRunDir(id)); err != nil {
		return err
	}
	// The record goes with the data directory, last.
	if err := os.RemoveAll(m.containerDataDir(id)); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.containers, id)
	m.mu.Unlock()
	if c.rec.LogPath != "" {
		_ = os.Remove(c.rec.LogPath)
		_ = os.Remove(filepath.Dir(c.rec.LogPath)) // the container's log directory, once empty
	}
	return nil
}
