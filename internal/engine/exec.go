package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
)

// execs are the exec processes created with ExecCreate.
type execs struct {
	mu   sync.Mutex
	byID map[string]*execProc
}

type execProc struct {
	id          string
	containerID string
	req         container.ExecCreateRequest
	mu          sync.Mutex
	running     bool
	started     bool
	exitCode    *int
	pid         int
	resize      chan [2]uint16
}

func newExecs() *execs { return &execs{byID: map[string]*execProc{}} }

func (x *execs) get(id string) (*execProc, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.byID[id]
	if !ok {
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (x *execs) forContainer(id string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for _, p := range x.byID {
		if p.containerID == id {
			out = append(out, p.id)
		}
	}
	return out
}

// ExecCreate registers an exec process in a running container.
func (e *Engine) ExecCreate(ctx context.Context, nameOrID string, req container.ExecCreateRequest) (string, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	running, id := c.rec.State.Running, c.rec.ID
	c.mu.Unlock()
	if !running {
		return "", fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
	}
	if len(req.Cmd) == 0 {
		return "", fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalid)
	}
	p := &execProc{id: newID(), containerID: id, req: req, resize: make(chan [2]uint16, 4)}
	e.execs.mu.Lock()
	e.execs.byID[p.id] = p
	e.execs.mu.Unlock()
	e.emitAttrs(events.ContainerEventType, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), c, map[string]string{"execID": p.id})
	return p.id, nil
}

// ExecStart runs the exec process and returns when it exits.
func (e *Engine) ExecStart(ctx context.Context, execID string, opts dockerapi.ExecStartOptions) error {
	p, err := e.execs.get(execID)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return fmt.Errorf("exec %s has already been started: %w", execID, errdefs.ErrConflict)
	}
	p.started, p.running = true, true
	p.mu.Unlock()
	c, err := e.ctrs.get(p.containerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cfg := c.rec.Config
	running := c.rec.State.Running
	rootfs := e.ctrs.path(c.rec.ID, "rootfs")
	img, _ := e.opts.Images.Resolve(ctx, c.rec.ImageID)
	c.mu.Unlock()
	if !running {
		return fmt.Errorf("container %s is not running: %w", p.containerID, errdefs.ErrConflict)
	}
	user := p.req.User
	if user == "" {
		user = cfg.User
		if user == "" {
			user = img.Config.Config.User
		}
	}
	u, err := oci.ResolveUser(rootfs, user, nil)
	if err != nil {
		return err
	}
	cwd := p.req.WorkingDir
	if cwd == "" {
		cwd = cfg.WorkingDir
		if cwd == "" {
			cwd = img.Config.Config.WorkingDir
		}
	}
	if cwd == "" {
		cwd = "/"
	}
	env := mergeEnv(mergeEnv(img.Config.Config.Env, cfg.Env), p.req.Env)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append([]string{"PATH=" + oci.DefaultPath}, env...)
	}
	if p.req.Tty {
		env = mergeEnv(env, []string{"TERM=xterm"})
	}
	proc := specs.Process{
		Terminal: p.req.Tty,
		User:     u,
		Args:     p.req.Cmd,
		Env:      env,
		Cwd:      cwd,
	}
	if p.req.ConsoleSize != nil {
		proc.ConsoleSize = &specs.Box{Height: p.req.ConsoleSize[0], Width: p.req.ConsoleSize[1]}
	}
	streams := runtime.Streams{Stdout: opts.Stdout, Stderr: opts.Stderr}
	if p.req.AttachStdin {
		streams.Stdin = opts.Stdin
	}
	if !p.req.AttachStdout {
		streams.Stdout = io.Discard
	}
	if !p.req.AttachStderr {
		streams.Stderr = io.Discard
	}
	if opts.Detach {
		streams = runtime.Streams{Stdout: io.Discard, Stderr: io.Discard}
	}
	run := func(ctx context.Context) error {
		code, err := e.opts.Runtime.Exec(ctx, p.containerID, runtime.ExecRequest{
			ExecID:  p.id,
			Process: proc,
			Streams: streams,
			Resize:  p.resize,
			Started: func(pid int) {
				p.mu.Lock()
				p.pid = pid
				p.mu.Unlock()
			},
		})
		p.mu.Lock()
		p.running = false
		if err == nil {
			p.exitCode = &code
		} else {
			bad := 126
			if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such file") {
				bad = 127
			}
			p.exitCode = &bad
		}
		p.mu.Unlock()
		e.emitAttrs(events.ContainerEventType, events.ActionExecDie, c, map[string]string{"execID": p.id, "exitCode": fmt.Sprint(*p.exitCode)})
		return err
	}
	e.emitAttrs(events.ContainerEventType, events.Action("exec_start: "+strings.Join(p.req.Cmd, " ")), c, map[string]string{"execID": p.id})
	if opts.Detach {
		go func() { _ = run(context.WithoutCancel(ctx)) }()
		return nil
	}
	err = run(ctx)
	if err != nil && opts.Stderr != nil {
		// Docker shows the runtime's message on the exec's stderr and exits 126/127.
		fmt.Fprintf(opts.Stderr, "OCI runtime exec failed: %v\n", err)
		return nil
	}
	return err
}

// ExecResize resizes the exec's TTY.
func (e *Engine) ExecResize(ctx context.Context, execID string, height, width uint) error {
	p, err := e.execs.get(execID)
	if err != nil {
		return err
	}
	select {
	case p.resize <- [2]uint16{uint16(width), uint16(height)}:
	default:
	}
	return nil
}

// ExecInspect reports an exec's state and exit code.
func (e *Engine) ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	p, err := e.execs.get(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := container.ExecInspectResponse{
		ID:          p.id,
		Running:     p.running,
		ContainerID: p.containerID,
		OpenStdin:   p.req.AttachStdin,
		OpenStdout:  p.req.AttachStdout,
		OpenStderr:  p.req.AttachStderr,
		Pid:         p.pid,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: p.req.Tty, Entrypoint: p.req.Cmd[0], Arguments: p.req.Cmd[1:], User: p.req.User,
		},
	}
	if p.exitCode != nil {
		code := *p.exitCode
		out.ExitCode = &code
	}
	return out, nil
}
