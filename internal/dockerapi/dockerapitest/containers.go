package dockerapitest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// fakeContainer is a container's record; b.mu guards it.
type fakeContainer struct {
	id, name   string
	created    time.Time
	config     *container.Config
	hostConfig *container.HostConfig
	imageID    string
	networks   map[string]*network.EndpointSettings // by network name

	state                 container.ContainerState
	exitCode, pid         int
	startedAt, finishedAt time.Time
	restarts              int
	signal                int // the signal that ends the current run, 0 if none
	cancel                context.CancelFunc
	size                  [2]uint

	logs      []dockerapi.LogEntry
	logNotify chan struct{} // closed and replaced on every log entry or state change
	attachers map[*attacher]struct{}
	// runDone is closed when the current run (or, if not running, the
	// next one) exits; a fresh one replaces it.
	runDone chan struct{}
	stdinR  *io.PipeReader // the current-or-next run's stdin (OpenStdin)
	stdinW  *io.PipeWriter
	removed chan struct{}
	gone    bool
	cpu     uint64
}

// notify wakes log followers; b.mu is held.
func (c *fakeContainer) notify() {
	close(c.logNotify)
	c.logNotify = make(chan struct{})
}

// argv is the command a run executes.
func (c *fakeContainer) argv() []string {
	return append(slices.Clone(c.config.Entrypoint), c.config.Cmd...)
}

// container finds a container by ID, name or unique ID prefix; b.mu is
// held.
func (b *Backend) container(ref string) (*fakeContainer, error) {
	if c, ok := b.containers[ref]; ok {
		return c, nil
	}
	name := strings.TrimPrefix(ref, "/")
	for _, c := range b.containers {
		if c.name == name {
			return c, nil
		}
	}
	c, ok, err := byPrefix(b.containers, ref, "")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(errdefs.ErrNotFound, "No such container: %s", ref)
	}
	return c, nil
}

// ContainerCreate implements dockerapi.Backend.
func (b *Backend) ContainerCreate(_ context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.Config == nil {
		return container.CreateResponse{}, errf(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	img, err := b.image(req.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		b.seq++
		name = fmt.Sprintf("fake_%d", b.seq)
	}
	for _, c := range b.containers {
		if c.name == name {
			return container.CreateResponse{}, errf(errdefs.ErrConflict,
				"Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, c.id)
		}
	}
	cfg := mergeConfig(img.config, req.Config)
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return container.CreateResponse{}, errf(errdefs.ErrInvalid, "no command specified")
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	netName := string(hc.NetworkMode)
	if netName == "" || netName == "default" {
		netName = "bridge"
	}
	c := &fakeContainer{
		id: randomID(), name: name, created: time.Now(), config: cfg, hostConfig: hc, imageID: img.id,
		networks: map[string]*network.EndpointSettings{}, state: container.StateCreated,
		logNotify: make(chan struct{}), attachers: map[*attacher]struct{}{},
		runDone: make(chan struct{}), removed: make(chan struct{}),
	}
	if !strings.HasPrefix(netName, "container:") {
		n, err := b.network(netName)
		if err != nil {
			return container.CreateResponse{}, err
		}
		var ep *network.EndpointSettings
		if req.NetworkingConfig != nil {
			ep = req.NetworkingConfig.EndpointsConfig[netName]
		}
		b.connect(n, c, ep)
	}
	for _, bind := range hc.Binds {
		if src, _, ok := strings.Cut(bind, ":"); ok && !strings.HasPrefix(src, "/") {
			b.ensureVolume(src)
		}
	}
	c.newStdin()
	b.containers[c.id] = c
	b.emit(events.ContainerEventType, events.ActionCreate, c.id, map[string]string{"name": name, "image": cfg.Image})
	return container.CreateResponse{ID: c.id}, nil
}

// mergeConfig is the container's config: the request over the image's.
func mergeConfig(img, req *container.Config) *container.Config {
	cfg := *req
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		cfg.Entrypoint, cfg.Cmd = img.Entrypoint, img.Cmd
	} else if len(cfg.Entrypoint) == 0 && cfg.Entrypoint == nil {
		cfg.Entrypoint = img.Entrypoint
	}
	cfg.Env = append(slices.Clone(img.Env), req.Env...)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	labels := maps.Clone(img.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, req.Labels)
	cfg.Labels = labels
	return &cfg
}

// newStdin makes the stdin pipe of the next run (if stdin is open).
func (c *fakeContainer) newStdin() {
	c.stdinR, c.stdinW = nil, nil
	if c.config.OpenStdin {
		c.stdinR, c.stdinW = io.Pipe()
	}
}

// ContainerStart implements dockerapi.Backend.
func (b *Backend) ContainerStart(_ context.Context, ref string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	return b.start(c)
}

// start runs c's program; b.mu is held.
func (b *Backend) start(c *fakeContainer) error {
	if c.state == container.StateRunning {
		return errf(errdefs.ErrNotModified, "container %s is already running", c.id)
	}
	argv := c.argv()
	prog, ok := b.Programs[baseName(argv[0])]
	if !ok {
		// A run that failed to start: it exits at once (and --rm removes
		// the container), like a real engine's.
		b.exitedLocked(c, c.runDone, 127)
		return errf(errdefs.ErrInvalid, "failed to create task for container: exec: %q: executable file not found in $PATH", argv[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.seq++
	c.state, c.pid, c.exitCode, c.signal, c.cancel = container.StateRunning, 4000+b.seq, 0, 0, cancel
	c.startedAt = time.Now()
	run, stdin := c.runDone, io.Reader(strings.NewReader(""))
	if c.stdinR != nil {
		stdin = c.stdinR
	}
	stdout := &outWriter{b: b, c: c, stream: "stdout"}
	var stderr io.Writer = &outWriter{b: b, c: c, stream: "stderr"}
	if c.config.Tty {
		stderr = stdout
	}
	p := Proc{Args: argv, Env: c.config.Env, Tty: c.config.Tty, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	b.emit(events.ContainerEventType, events.ActionStart, c.id, map[string]string{"name": c.name, "image": c.config.Image})
	c.notify()
	go func() {
		code := prog(ctx, p)
		cancel()
		b.exited(c, run, code)
	}()
	return nil
}

// exited records the end of a run.
func (b *Backend) exited(c *fakeContainer, run chan struct{}, code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.exitedLocked(c, run, code)
}

// exitedLocked records the end of a run; b.mu is held.
func (b *Backend) exitedLocked(c *fakeContainer, run chan struct{}, code int) {
	if c.signal != 0 {
		code = 128 + c.signal
	}
	c.state, c.exitCode, c.finishedAt, c.pid, c.cancel = container.StateExited, code, time.Now(), 0, nil
	if c.stdinR != nil {
		c.stdinR.CloseWithError(io.ErrClosedPipe)
	}
	c.newStdin()
	close(run)
	c.runDone = make(chan struct{})
	c.notify()
	b.emit(events.ContainerEventType, events.ActionDie, c.id, map[string]string{"name": c.name, "image": c.config.Image, "exitCode": fmt.Sprint(code)})
	autoRemove := c.hostConfig.AutoRemove && !c.gone
	if autoRemove {
		b.remove(c)
	}
}

// stop ends c's run with sig and waits for it; b.mu is held on entry and
// exit, released while waiting.
func (b *Backend) stop(ctx context.Context, c *fakeContainer, sig int) error {
	if c.state != container.StateRunning {
		return nil
	}
	c.signal = sig
	run := c.runDone
	c.cancel()
	b.mu.Unlock()
	defer b.mu.Lock()
	select {
	case <-run:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ContainerStop implements dockerapi.Backend.
func (b *Backend) ContainerStop(ctx context.Context, ref string, opts dockerapi.StopOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return errf(errdefs.ErrNotModified, "container %s is not running", c.id)
	}
	sig, err := parseSignal(opts.Signal, 15)
	if err != nil {
		return err
	}
	if err := b.stop(ctx, c, sig); err != nil {
		return err
	}
	b.emit(events.ContainerEventType, events.ActionStop, c.id, map[string]string{"name": c.name})
	return nil
}

// ContainerRestart implements dockerapi.Backend.
func (b *Backend) ContainerRestart(ctx context.Context, ref string, opts dockerapi.StopOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	sig, err := parseSignal(opts.Signal, 15)
	if err != nil {
		return err
	}
	if err := b.stop(ctx, c, sig); err != nil {
		return err
	}
	if c.gone {
		return errf(errdefs.ErrNotFound, "No such container: %s", ref)
	}
	c.restarts++
	if err := b.start(c); err != nil {
		return err
	}
	b.emit(events.ContainerEventType, events.ActionRestart, c.id, map[string]string{"name": c.name})
	return nil
}

// ContainerKill implements dockerapi.Backend.
func (b *Backend) ContainerKill(ctx context.Context, ref, signal string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return errf(errdefs.ErrConflict, "cannot kill container: %s: container %s is not running", ref, c.id)
	}
	sig, err := parseSignal(signal, 9)
	if err != nil {
		return err
	}
	b.emit(events.ContainerEventType, events.ActionKill, c.id, map[string]string{"name": c.name, "signal": fmt.Sprint(sig)})
	return b.stop(ctx, c, sig)
}

var signals = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15}

// parseSignal takes "KILL", "SIGKILL" or "9"; "" is def.
func parseSignal(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && n > 0 && n < 65 {
		return n, nil
	}
	if n, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return n, nil
	}
	return 0, errf(errdefs.ErrInvalid, "invalid signal: %s", s)
}

// ContainerWait implements dockerapi.Backend.
func (b *Backend) ContainerWait(ctx context.Context, ref string, cond container.WaitCondition, ready chan<- struct{}) (container.WaitResponse, error) {
	b.mu.Lock()
	c, err := b.container(ref)
	if err != nil {
		b.mu.Unlock()
		return container.WaitResponse{}, err
	}
	var ch chan struct{}
	switch cond {
	case container.WaitConditionNextExit:
		ch = c.runDone
	case container.WaitConditionRemoved:
		ch = c.removed
	default:
		if c.state != container.StateRunning {
			code := c.exitCode
			b.mu.Unlock()
			if ready != nil {
				close(ready)
			}
			return container.WaitResponse{StatusCode: int64(code)}, nil
		}
		ch = c.runDone
	}
	b.mu.Unlock()
	if ready != nil {
		close(ready)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return container.WaitResponse{}, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return container.WaitResponse{StatusCode: int64(c.exitCode)}, nil
}

// ContainerRemove implements dockerapi.Backend.
func (b *Backend) ContainerRemove(ctx context.Context, ref string, opts dockerapi.RemoveOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	if c.state == container.StateRunning {
		if !opts.Force {
			return errf(errdefs.ErrConflict, "cannot remove container %q: container is running: stop the container before removing or force remove", ref)
		}
		c.hostConfig.AutoRemove = false
		if err := b.stop(ctx, c, 9); err != nil {
			return err
		}
	}
	if !c.gone {
		b.remove(c)
	}
	return nil
}

// remove deletes c; b.mu is held.
func (b *Backend) remove(c *fakeContainer) {
	c.gone = true
	delete(b.containers, c.id)
	for _, n := range b.networks {
		delete(n.containers, c.id)
	}
	for id, e := range b.execs {
		if e.c == c {
			delete(b.execs, id)
		}
	}
	close(c.removed)
	c.notify()
	b.emit(events.ContainerEventType, events.ActionDestroy, c.id, map[string]string{"name": c.name, "image": c.config.Image})
}
