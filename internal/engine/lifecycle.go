package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

const defaultStopTimeout = 10 * time.Second

// ContainerStart starts a created or exited container.
func (e *Engine) ContainerStart(ctx context.Context, nameOrID string) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return fmt.Errorf("No such container: %s: %w", nameOrID, errdefs.ErrNotFound)
	}
	if c.rec.State.Running {
		return fmt.Errorf("container %s is already running: %w", c.rec.ID[:12], errdefs.ErrNotModified)
	}
	c.rec.ManuallyStopped = false
	return e.start(ctx, c)
}

// start brings the container up: rootfs, network, spec, shim. Call with
// c.mu held. On error everything it set up is undone and the error is
// recorded in the state.
func (e *Engine) start(ctx context.Context, c *ctr) (err error) {
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		c.rec.State.Error = err.Error()
		if c.rec.State.Status != container.StateCreated {
			c.rec.State.Status = container.StateExited
			c.rec.State.ExitCode = 128
		}
		_ = e.ctrs.save(c)
		c.notify()
	}()
	prep, err := e.prepare(ctx, c, &undo)
	if err != nil {
		return err
	}
	logPath := e.ctrs.path(c.rec.ID, "container.log")
	pid, err := e.opts.Runtime.Start(ctx, runtime.StartRequest{
		ID:        c.rec.ID,
		Bundle:    prep.bundle,
		LogPath:   logPath,
		OpenStdin: c.rec.Config.OpenStdin,
		StdinOnce: c.rec.Config.StdinOnce,
		Terminal:  c.rec.Config.Tty,
		// docker run attaches before it starts: hold the program until the
		// attach connects so no output is missed.
		HoldUntilAttach: len(c.attachers) > 0,
	})
	if err != nil {
		return fmt.Errorf("failed to create task for container: %w", err)
	}
	now := e.now().UTC()
	c.rec.State = container.State{
		Status:    container.StateRunning,
		Running:   true,
		Pid:       pid,
		StartedAt: now.Format(time.RFC3339Nano),
	}
	if err := e.ctrs.save(c); err != nil {
		e.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	for _, ch := range c.attachers {
		close(ch)
	}
	c.attachers = nil
	c.notify()
	e.emit(events.ContainerEventType, events.ActionStart, c)
	e.monitor(c)
	return nil
}

// monitor waits for the container's exit in the background.
func (e *Engine) monitor(c *ctr) {
	id := c.rec.ID
	e.wg.Go(func() {
		st, err := e.opts.Runtime.Wait(e.ctx, id)
		if e.ctx.Err() != nil {
			return // the engine is stopping; the container keeps running
		}
		if err != nil {
			e.log.Error("wait for container", "id", id, "err", err)
			st = runtime.ExitStatus{Code: 255, FinishedAt: e.now()}
		}
		e.exited(c, st)
	})
}

// exited records an exit, tears the container's runtime down and applies
// the restart policy.
func (e *Engine) exited(c *ctr, st runtime.ExitStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rec.State.Running {
		return
	}
	e.teardown(c)
	if st.FinishedAt.IsZero() {
		st.FinishedAt = e.now()
	}
	c.rec.State.Status = container.StateExited
	c.rec.State.Running = false
	c.rec.State.Pid = 0
	c.rec.State.ExitCode = st.Code
	c.rec.State.OOMKilled = st.OOMKilled
	c.rec.State.FinishedAt = st.FinishedAt.UTC().Format(time.RFC3339Nano)
	_ = e.ctrs.save(c)
	c.notify()
	if st.OOMKilled {
		e.emit(events.ContainerEventType, events.ActionOOM, c)
	}
	e.emitAttrs(events.ContainerEventType, events.ActionDie, c, map[string]string{"exitCode": strconv.Itoa(st.Code)})

	if c.rec.HostConfig.AutoRemove && !c.removed {
		go func() {
			if err := e.ContainerRemove(e.ctx, c.rec.ID, dockerapi.RemoveOptions{RemoveVolumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				e.log.Error("auto-remove", "id", c.rec.ID, "err", err)
			}
		}()
		return
	}
	if delay, ok := e.shouldRestart(c, st); ok {
		c.rec.State.Status = container.StateRestarting
		c.rec.State.Restarting = true
		_ = e.ctrs.save(c)
		c.notify()
		e.wg.Go(func() { e.restartAfter(c, delay) })
	}
}

// shouldRestart applies the restart policy after an exit and returns the
// back-off delay: 100 ms doubling per consecutive restart, reset after
// ten seconds of running, at most a minute (Docker's rule).
func (e *Engine) shouldRestart(c *ctr, st runtime.ExitStatus) (time.Duration, bool) {
	rp := c.rec.HostConfig.RestartPolicy
	if c.rec.ManuallyStopped || c.removed {
		return 0, false
	}
	switch rp.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if st.Code == 0 || (rp.MaximumRetryCount > 0 && c.rec.RestartCount >= rp.MaximumRetryCount) {
			return 0, false
		}
	default:
		return 0, false
	}
	started, _ := time.Parse(time.RFC3339Nano, c.rec.State.StartedAt)
	if st.FinishedAt.Sub(started) >= 10*time.Second {
		return 100 * time.Millisecond, true
	}
	delay := 100 * time.Millisecond << min(c.rec.RestartCount, 10)
	return min(delay, time.Minute), true
}

func (e *Engine) restartAfter(c *ctr, delay time.Duration) {
	select {
	case <-e.ctx.Done():
		return
	case <-time.After(delay):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed || !c.rec.State.Restarting || c.rec.ManuallyStopped {
		return
	}
	c.rec.RestartCount++
	c.rec.State.Restarting = false
	if err := e.start(e.ctx, c); err != nil {
		e.log.Error("restart container", "id", c.rec.ID, "err", err)
		return
	}
	e.emit(events.ContainerEventType, events.ActionRestart, c)
}

// teardown releases what a run of the container held: runtime state,
// network attachments, rootfs mount. Idempotent. Call with c.mu held.
func (e *Engine) teardown(c *ctr) {
	ctx := context.WithoutCancel(e.ctx)
	if err := e.opts.Runtime.Delete(ctx, c.rec.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		e.log.Warn("delete runtime state", "id", c.rec.ID, "err", err)
	}
	e.releaseNetwork(ctx, c)
	e.releaseRootfs(c)
}

// ContainerStop stops a running container: its stop signal, then SIGKILL
// after the timeout.
func (e *Engine) ContainerStop(ctx context.Context, nameOrID string, opts dockerapi.StopOptions) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.rec.State.Restarting {
		c.rec.ManuallyStopped = true
		c.rec.State.Restarting = false
		c.rec.State.Status = container.StateExited
		_ = e.ctrs.save(c)
		c.notify()
		c.mu.Unlock()
		return nil
	}
	if !c.rec.State.Running {
		c.mu.Unlock()
		return fmt.Errorf("container %s is not running: %w", c.rec.ID[:12], errdefs.ErrNotModified)
	}
	c.rec.ManuallyStopped = true
	_ = e.ctrs.save(c)
	c.mu.Unlock()
	return e.stop(ctx, c, opts)
}

func (e *Engine) stop(ctx context.Context, c *ctr, opts dockerapi.StopOptions) error {
	sigName := opts.Signal
	if sigName == "" {
		sigName = c.rec.Config.StopSignal
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		s, err := parseSignal(sigName)
		if err != nil {
			return err
		}
		sig = s
	}
	timeout := defaultStopTimeout
	if c.rec.Config.StopTimeout != nil {
		timeout = time.Duration(*c.rec.Config.StopTimeout) * time.Second
	}
	if opts.Timeout != nil {
		timeout = time.Duration(*opts.Timeout) * time.Second
	}
	e.emitAttrs(events.ContainerEventType, events.ActionKill, c, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := e.opts.Runtime.Kill(ctx, c.rec.ID, sig); err != nil && !gone(err) {
		return err
	}
	if e.waitStopped(ctx, c, timeout) {
		e.emit(events.ContainerEventType, events.ActionStop, c)
		return nil
	}
	if err := e.opts.Runtime.Kill(ctx, c.rec.ID, syscall.SIGKILL); err != nil && !gone(err) {
		return err
	}
	if !e.waitStopped(ctx, c, -1) {
		return ctx.Err()
	}
	e.emit(events.ContainerEventType, events.ActionStop, c)
	return nil
}

// waitStopped waits until c is no longer running (timeout < 0: until ctx
// ends) and reports whether it stopped.
func (e *Engine) waitStopped(ctx context.Context, c *ctr, timeout time.Duration) bool {
	var deadline <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		c.mu.Lock()
		running, ch := c.rec.State.Running, c.changed
		c.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// ContainerRestart stops (if running) and starts the container.
func (e *Engine) ContainerRestart(ctx context.Context, nameOrID string, opts dockerapi.StopOptions) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.rec.State.Running
	c.rec.ManuallyStopped = true
	c.mu.Unlock()
	if running {
		if err := e.stop(ctx, c, opts); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.ManuallyStopped = false
	c.rec.State.Restarting = false
	if c.rec.State.Running {
		return nil
	}
	if err := e.start(ctx, c); err != nil {
		return err
	}
	e.emit(events.ContainerEventType, events.ActionRestart, c)
	return nil
}

// ContainerKill sends a signal to the container's main process.
func (e *Engine) ContainerKill(ctx context.Context, nameOrID, signal string) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	running := c.rec.State.Running
	if running && (sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGINT) {
		c.rec.ManuallyStopped = true
		_ = e.ctrs.save(c)
	}
	c.mu.Unlock()
	if !running {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", nameOrID, c.rec.ID[:12], errdefs.ErrConflict)
	}
	e.emitAttrs(events.ContainerEventType, events.ActionKill, c, map[string]string{"signal": strconv.Itoa(int(sig))})
	return e.opts.Runtime.Kill(ctx, c.rec.ID, sig)
}

// parseSignal accepts "KILL", "SIGKILL", "sigkill" or "9".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalid)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalid)
	}
	return sig, nil
}

// ContainerWait blocks until the condition holds.
func (e *Engine) ContainerWait(ctx context.Context, nameOrID string, cond container.WaitCondition, ready chan<- struct{}) (container.WaitResponse, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return container.WaitResponse{}, err
	}
	c.mu.Lock()
	ch := c.changed
	initialRunning := c.rec.State.Running || c.rec.State.Restarting
	c.mu.Unlock()
	if ready != nil {
		close(ready)
	}
	sawRunning := initialRunning
	for {
		c.mu.Lock()
		st, removed, restarting := c.rec.State, c.removed, c.rec.State.Restarting
		c.mu.Unlock()
		done := false
		switch cond {
		case container.WaitConditionRemoved:
			done = removed
		case container.WaitConditionNextExit:
			done = sawRunning && !st.Running && !restarting
		default: // not-running
			done = (!st.Running && !restarting) || removed
		}
		if st.Running {
			sawRunning = true
		}
		if done {
			resp := container.WaitResponse{StatusCode: int64(st.ExitCode)}
			if st.Error != "" {
				resp.Error = &container.WaitExitError{Message: st.Error}
			}
			return resp, nil
		}
		select {
		case <-ch:
			c.mu.Lock()
			ch = c.changed
			c.mu.Unlock()
		case <-ctx.Done():
			return container.WaitResponse{}, ctx.Err()
		}
	}
}

// ContainerRemove removes a container: a running one only with Force.
func (e *Engine) ContainerRemove(ctx context.Context, nameOrID string, opts dockerapi.RemoveOptions) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.rec.State.Running
	if running && !opts.Force {
		c.mu.Unlock()
		return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", "/"+c.rec.Name, errdefs.ErrConflict)
	}
	c.rec.ManuallyStopped = true
	c.rec.State.Restarting = false
	c.mu.Unlock()
	if running {
		if err := e.opts.Runtime.Kill(ctx, c.rec.ID, syscall.SIGKILL); err != nil && !gone(err) {
			return err
		}
		if !e.waitStopped(ctx, c, -1) {
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	e.teardown(c)
	c.removed = true
	e.ctrs.remove(c)
	if err := os.RemoveAll(e.ctrs.path(c.rec.ID)); err != nil {
		e.log.Warn("remove container directory", "id", c.rec.ID, "err", err)
	}
	if opts.RemoveVolumes {
		e.removeAnonymousVolumes(c)
	}
	c.notify()
	e.emit(events.ContainerEventType, events.ActionDestroy, c)
	return nil
}

// adopt reconciles a container loaded at engine start with its runtime:
// a running shim is re-adopted; an exit while the engine was away is
// recorded; restart policies are applied.
func (e *Engine) adopt(ctx context.Context, c *ctr) {
	c.mu.Lock()
	wasRunning := c.rec.State.Running || c.rec.State.Restarting
	c.mu.Unlock()
	if !wasRunning {
		return
	}
	st, err := e.opts.Runtime.State(ctx, c.rec.ID)
	switch {
	case err == nil && st.Running:
		c.mu.Lock()
		c.rec.State.Pid = st.Pid
		c.mu.Unlock()
		e.monitor(c)
		return
	case err == nil && st.Exit != nil:
		e.exited(c, *st.Exit)
	default:
		// The shim is gone without a word (a reboot, or it was killed).
		e.exited(c, runtime.ExitStatus{Code: 255, FinishedAt: e.now()})
	}
	c.mu.Lock()
	restart := !c.rec.State.Running && !c.rec.State.Restarting && !c.rec.ManuallyStopped &&
		(c.rec.HostConfig.RestartPolicy.Name == container.RestartPolicyAlways ||
			c.rec.HostConfig.RestartPolicy.Name == container.RestartPolicyUnlessStopped)
	if restart {
		if err := e.start(ctx, c); err != nil {
			e.log.Error("restart after engine start", "id", c.rec.ID, "err", err)
		}
	}
	c.mu.Unlock()
}

// gone reports a runtime error that means the process has already exited
// (the shim is gone, or it reports the container stopped): a kill that
// finds it so has nothing left to do.
func gone(err error) bool {
	return errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrConflict)
}
