package dockerapitest

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

type fakeExec struct {
	id       string
	c        *fakeContainer
	cfg      container.ExecCreateRequest
	started  bool
	running  bool
	exitCode *int
	pid      int
}

func (b *Backend) exec(id string) (*fakeExec, error) {
	if e, ok := b.execs[id]; ok {
		return e, nil
	}
	return nil, errf(errdefs.ErrNotFound, "No such exec instance: %s", id)
}

// ExecCreate implements dockerapi.Backend.
func (b *Backend) ExecCreate(_ context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return "", err
	}
	if c.state != container.StateRunning {
		return "", errf(errdefs.ErrConflict, "container %s is not running", c.id)
	}
	if len(req.Cmd) == 0 {
		return "", errf(errdefs.ErrInvalid, "No exec command specified")
	}
	e := &fakeExec{id: randomID(), c: c, cfg: req}
	b.execs[e.id] = e
	b.emit(events.ContainerEventType, events.ActionExecCreate+events.Action(": "+strings.Join(req.Cmd, " ")), c.id, map[string]string{"name": c.name, "execID": e.id})
	return e.id, nil
}

// ExecStart implements dockerapi.Backend. The process is ended when the
// container stops; when ctx ends, it is ended too (the fake has no way to
// keep running unattended output).
func (b *Backend) ExecStart(ctx context.Context, id string, opts dockerapi.ExecStartOptions) error {
	b.mu.Lock()
	e, err := b.exec(id)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	if e.started {
		b.mu.Unlock()
		return errf(errdefs.ErrConflict, "exec %s has already been started", id)
	}
	c := e.c
	if c.state != container.StateRunning || c.cancel == nil {
		b.mu.Unlock()
		return errf(errdefs.ErrConflict, "container %s is not running", c.id)
	}
	e.started = true
	prog, ok := b.Programs[baseName(e.cfg.Cmd[0])]
	if !ok {
		code := 127
		e.exitCode = &code
		b.mu.Unlock()
		return errf(errdefs.ErrInvalid, "OCI runtime exec failed: exec failed: unable to start container process: exec: %q: executable file not found in $PATH", e.cfg.Cmd[0])
	}
	b.seq++
	e.running, e.pid = true, 5000+b.seq
	run := c.runDone
	b.emit(events.ContainerEventType, events.ActionExecStart+events.Action(": "+strings.Join(e.cfg.Cmd, " ")), c.id, map[string]string{"name": c.name, "execID": e.id})
	b.mu.Unlock()

	p := Proc{Args: e.cfg.Cmd, Env: append(append([]string(nil), c.config.Env...), e.cfg.Env...), Tty: e.cfg.Tty,
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	if e.cfg.AttachStdin && opts.Stdin != nil {
		p.Stdin = opts.Stdin
	}
	if e.cfg.AttachStdout && opts.Stdout != nil {
		p.Stdout = opts.Stdout
	}
	if e.cfg.AttachStderr && opts.Stderr != nil {
		p.Stderr = opts.Stderr
	}
	if e.cfg.Tty {
		p.Stderr = p.Stdout
	}
	pctx, cancel := context.WithCancel(context.Background())
	if !opts.Detach {
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
	}
	go func() { // the container's end ends its execs
		select {
		case <-run:
			cancel()
		case <-pctx.Done():
		}
	}()
	runIt := func() {
		code := prog(pctx, p)
		cancel()
		b.mu.Lock()
		e.running, e.exitCode, e.pid = false, &code, 0
		b.emit(events.ContainerEventType, events.ActionExecDie, c.id, map[string]string{"name": c.name, "execID": e.id, "exitCode": strconv.Itoa(code)})
		b.mu.Unlock()
	}
	if opts.Detach {
		go runIt()
		return nil
	}
	runIt()
	return nil
}

// ExecResize implements dockerapi.Backend.
func (b *Backend) ExecResize(_ context.Context, id string, _, _ uint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.exec(id)
	if err != nil {
		return err
	}
	if !e.running {
		return errf(errdefs.ErrConflict, "exec %s is not running", id)
	}
	return nil
}

// ExecInspect implements dockerapi.Backend.
func (b *Backend) ExecInspect(_ context.Context, id string) (container.ExecInspectResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.exec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	priv := e.cfg.Privileged
	return container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.c.id, Pid: e.pid,
		OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty, Entrypoint: e.cfg.Cmd[0], Arguments: e.cfg.Cmd[1:], Privileged: &priv, User: e.cfg.User},
	}, nil
}
