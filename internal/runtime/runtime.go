// Package runtime is the engine's side of Skiff's container runtime: it
// starts one skiff-shim process per container (package shim, which runs
// the container with libcontainer) and talks to it over the shim's control
// socket (package shim/wire). Shims outlive the engine; a new Runtime on
// the same state directory re-adopts them, and a container that exited
// while no engine ran still reports how (exit.json).
//
// The state directory holds one directory per container:
//
//	<state>/<id>/shim.sock      the shim's control socket (while it runs)
//	<state>/<id>/exit.json      how the init exited (written by the shim)
//	<state>/<id>/shim.log       the shim's own warnings
//	<state>/<id>/shim.lock      flock(2)ed by the shim while it lives
//	<state>/<id>/libcontainer/  libcontainer's state (while it runs)
//
// The engine (container and pod services) imports it. It does not link
// libcontainer.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// Options configure a Runtime.
type Options struct {
	// StateDir holds the containers' state (e.g. /run/skiff/containers).
	StateDir string
	// ShimPath is the skiff-shim binary.
	ShimPath string
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// Runtime starts and controls containers. Its methods are safe for
// concurrent use.
type Runtime struct {
	opts Options
	log  *slog.Logger
}

// New returns a Runtime; it does no I/O.
func New(opts Options) *Runtime {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Runtime{opts: opts, log: log.With("component", "runtime")}
}

// StartRequest says what to start.
type StartRequest struct {
	// ID names the container: letters, digits, '_', '+', '-', '.'.
	ID string
	// Bundle is the OCI bundle directory: config.json with an absolute
	// root.path (an already mounted root filesystem).
	Bundle string
	// LogPath is the CRI log file the container's output is appended to.
	LogPath string
	// OpenStdin keeps the container's stdin open for Attach; otherwise it
	// reads /dev/null.
	OpenStdin bool
	// StdinOnce closes the container's stdin when the first attached
	// stdin ends (Docker's `run -i`).
	StdinOnce bool
	// Terminal gives the container a terminal (spec.Process.Terminal is
	// set from it); all output is then "stdout".
	Terminal bool
	// HoldUntilAttach creates the container but runs its program only
	// once the first Attach connects, so an attached client sees all of
	// its output (Docker attaches before it starts). Start still returns
	// the init's pid; the caller must Attach (or Kill).
	HoldUntilAttach bool
}

// ExitStatus is how a container's init exited.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when a signal killed it.
	Code int
	// OOMKilled is set when the kernel's OOM killer killed a process of
	// the container.
	OOMKilled  bool
	FinishedAt time.Time
}

// State is a container's state.
type State struct {
	Running bool
	// Pid is the init's pid (in the host's PID namespace) while running.
	Pid int
	// Exit is set once the init exited.
	Exit *ExitStatus
}

// Streams connect a client's stdio; nil members are not connected.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecRequest describes a process to run in a running container.
type ExecRequest struct {
	// ExecID names the process; two running processes of one container
	// cannot share an ID. May be empty.
	ExecID string
	// Process is what to run (Args, Env, Cwd, User, Terminal,
	// Capabilities...).
	Process specs.Process
	Streams Streams
	// Resize, when not nil, carries terminal sizes: [0] width, [1] height.
	Resize <-chan [2]uint16
	// Started, when not nil, is called with the process's pid once it
	// runs.
	Started func(pid int)
}

// Kill sends sig to the container's init.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := r.call(ctx, id, wire.Request{Op: wire.OpKill, Signal: int(sig)})
	return notRunning(id, err)
}

// KillAll sends sig to every process of the container.
func (r *Runtime) KillAll(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := r.call(ctx, id, wire.Request{Op: wire.OpKill, Signal: int(sig), All: true})
	return notRunning(id, err)
}

// Wait blocks until the container's init exited (and its output is in the
// log and its cgroup removed) or ctx ends.
func (r *Runtime) Wait(ctx context.Context, id string) (ExitStatus, error) {
	resp, err := r.call(ctx, id, wire.Request{Op: wire.OpWait})
	if errors.Is(err, errExited) {
		return r.readExit(id)
	}
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit == nil {
		return ExitStatus{}, fmt.Errorf("container %q: the shim answered wait without an exit status", id)
	}
	return exitStatus(resp.Exit), nil
}

// State reports whether the container runs and how it exited;
// errdefs.ErrNotFound for an unknown container.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	resp, err := r.call(ctx, id, wire.Request{Op: wire.OpState})
	if errors.Is(err, errExited) {
		st, err := r.readExit(id)
		if err != nil {
			return State{}, err
		}
		return State{Exit: &st}, nil
	}
	if err != nil {
		return State{}, err
	}
	s := State{Running: resp.Running, Pid: resp.Pid}
	if resp.Exit != nil {
		e := exitStatus(resp.Exit)
		s.Exit = &e
		s.Pid = 0
	}
	return s, nil
}

// Resize sets the size of the container's terminal (a no-op without one).
func (r *Runtime) Resize(ctx context.Context, id string, width, height uint16) error {
	_, err := r.call(ctx, id, wire.Request{Op: wire.OpResize, Size: &wire.Size{Width: width, Height: height}})
	return notRunning(id, err)
}

// Processes lists the pids (in the host's PID namespace) of the
// container's processes.
func (r *Runtime) Processes(ctx context.Context, id string) ([]int, error) {
	resp, err := r.call(ctx, id, wire.Request{Op: wire.OpProcesses})
	if err != nil {
		return nil, notRunning(id, err)
	}
	return resp.Pids, nil
}

// Stats samples the container's cgroup: CPU, memory, pids, block I/O.
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	resp, err := r.call(ctx, id, wire.Request{Op: wire.OpStats})
	if err != nil {
		return nil, notRunning(id, err)
	}
	if resp.Stats == nil {
		return &cgroups.Stats{}, nil
	}
	return resp.Stats, nil
}

// Delete removes an exited container's state; errdefs.ErrConflict while it
// runs. The log file is the caller's.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	st, err := r.State(ctx, id)
	switch {
	case errors.Is(err, errdefs.ErrUnavailable):
		// The shim is gone without recording an exit (it crashed): nothing
		// will read this state again.
		r.log.Warn("removing the state of a container whose shim is gone", "id", id, "err", err)
	case err != nil:
		return err
	case st.Running:
		return fmt.Errorf("container %q is running: %w", id, errdefs.ErrConflict)
	}
	// The shim exits right after recording the exit; let it finish so
	// that the ID can be reused at once.
	for wait := time.Millisecond; !r.shimGone(id); wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return os.RemoveAll(r.dir(id))
}

// shimGone reports whether no shim holds the container's lock.
func (r *Runtime) shimGone(id string) bool {
	f, err := os.OpenFile(filepath.Join(r.dir(id), wire.LockName), os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer f.Close() // releases our lock too
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil
}

// List returns the IDs of the containers with state, running or exited
// (for re-adoption after an engine restart).
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(r.opts.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && validID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.opts.StateDir, id) }

// readExit reads the exit status the shim recorded.
func (r *Runtime) readExit(id string) (ExitStatus, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(id), wire.ExitName))
	if errors.Is(err, fs.ErrNotExist) {
		return ExitStatus{}, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return ExitStatus{}, err
	}
	var st wire.ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return ExitStatus{}, fmt.Errorf("container %q: %s: %w", id, wire.ExitName, err)
	}
	return exitStatus(&st), nil
}

func exitStatus(st *wire.ExitStatus) ExitStatus {
	return ExitStatus{Code: st.Code, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt}
}

// validID accepts libcontainer's container IDs.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("container ID %q: %w", id, errdefs.ErrInvalid)
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '+', c == '-', c == '.':
		default:
			return fmt.Errorf("container ID %q: only letters, digits, '_', '+', '-' and '.' are allowed: %w", id, errdefs.ErrInvalid)
		}
	}
	return nil
}
