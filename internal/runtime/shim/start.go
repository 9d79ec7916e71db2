package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/crilog"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// libcontainerDir is libcontainer's state root inside the container's
// state directory (libcontainer's own directory is <dir>/libcontainer/<id>).
const libcontainerDir = "libcontainer"

// shim is one container and the clients connected to it.
type shim struct {
	o   options
	dir string
	log *slog.Logger

	container   *libcontainer.Container
	init        *libcontainer.Process
	pid         int
	cgroupPaths map[string]string

	// The container's stdin: the write end of its pipe, or the terminal.
	// Nil when it has no open stdin.
	stdin   *os.File
	console *os.File // the terminal's master side, when it has one
	logFile *os.File
	logw    *crilog.Writer // writes the container's output to logFile
	out     broadcaster
	pumps   sync.WaitGroup // output pumps; done when the output is drained

	initExited chan struct{} // closed once the init was reaped

	listener *net.UnixListener
	served   chan struct{} // closed when serve returned
	conns    sync.WaitGroup
	trim     trimmer

	releaseOnce sync.Once // lets a held init exec its program

	stdinMu     sync.Mutex // serializes writes to stdin and its closing
	stdinClosed bool

	mu    sync.Mutex
	exit  *wire.ExitStatus // set once the init exited
	done  chan struct{}    // closed once exit.json is written and the output drained
	execs map[string]bool  // running exec IDs
}

// start creates the container and runs its init. On error nothing of it
// is left (but dir itself, which Main removes).
func start(o options, dir string, log *slog.Logger) (_ *shim, retErr error) {
	spec, err := loadSpec(o.bundle)
	if err != nil {
		return nil, err
	}
	spec.Process.Terminal = o.terminal
	if spec.Linux != nil && spec.Linux.CgroupsPath == "" {
		// Absolute, so it does not depend on the shim's own cgroup.
		spec.Linux.CgroupsPath = "/skiff/" + o.id
	}
	// specconv resolves relative paths (the rootfs, mount sources)
	// against the working directory, which for runc is the bundle.
	if err := os.Chdir(o.bundle); err != nil {
		return nil, err
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       o.id,
		UseSystemdCgroup: false,
		NoPivotRoot:      false,
		Spec:             spec,
	})
	if err != nil {
		return nil, fmt.Errorf("container %q: %v: %w", o.id, err, errdefs.ErrInvalid)
	}
	proc, err := newProcess(spec.Process)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", o.id, err)
	}
	proc.Init = true

	s := &shim{o: o, dir: dir, log: log, done: make(chan struct{}), served: make(chan struct{}), initExited: make(chan struct{}), execs: map[string]bool{}}
	s.logFile, err = openLog(o.logPath)
	if err != nil {
		return nil, err
	}
	s.logw = crilog.NewWriter(s.logFile)
	defer func() {
		if retErr != nil {
			s.closeAll()
		}
	}()
	s.listener, err = wire.Listen(filepath.Join(dir, wire.SocketName))
	if err != nil {
		return nil, err
	}

	s.container, err = libcontainer.Create(filepath.Join(dir, libcontainerDir), o.id, cfg)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) {
			err = fmt.Errorf("%v: %w", err, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("container %q: %w", o.id, err)
	}
	defer func() {
		if retErr != nil {
			if err := s.container.Destroy(); err != nil {
				log.Warn("destroy after a failed start", "err", err)
			}
		}
	}()

	stdio, err := newStdio(proc, o.terminal, o.openStdin, true, true)
	if err != nil {
		return nil, err
	}
	defer stdio.closeChildEnds()
	if o.holdUntilAttach {
		err = s.container.Start(proc)
	} else {
		err = s.container.Run(proc)
	}
	if err != nil {
		stdio.closeParentEnds()
		return nil, startError(o.id, err)
	}
	s.init = proc
	s.pid, _ = proc.Pid()
	stdio.closeChildEnds()
	if err := s.startOutput(stdio); err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return nil, err
	}
	if st, err := s.container.State(); err == nil {
		s.cgroupPaths = st.CgroupPaths
	}
	go s.serve()
	return s, nil
}

// startError keeps libcontainer's message (it tells users what is wrong,
// e.g. `exec: "nope": executable file not found in $PATH`) and classifies
// the common user mistakes as invalid.
func startError(id string, err error) error {
	// runc init reports exec.LookPath's errors: `exec: "name": ...`.
	if msg := err.Error(); strings.Contains(msg, `exec: "`) {
		return fmt.Errorf("container %q: %v: %w", id, msg, errdefs.ErrInvalid)
	}
	return fmt.Errorf("container %q: %w", id, err)
}

func loadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrInvalid)
		}
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %v: %w", bundle, err, errdefs.ErrInvalid)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, fmt.Errorf("bundle %s: no process to run: %w", bundle, errdefs.ErrInvalid)
	}
	if spec.Root == nil || !filepath.IsAbs(spec.Root.Path) {
		return nil, fmt.Errorf("bundle %s: root.path must be absolute: %w", bundle, errdefs.ErrInvalid)
	}
	return &spec, nil
}

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o640)
}

// newProcess converts a runtime-spec process (runc's conversion).
func newProcess(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &p.NoNewPrivileges,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
	}
	if lp.Cwd == "" {
		lp.Cwd = "/"
	}
	if p.ConsoleSize != nil {
		lp.ConsoleWidth = uint16(p.ConsoleSize.Width)
		lp.ConsoleHeight = uint16(p.ConsoleSize.Height)
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding:    c.Bounding,
			Effective:   c.Effective,
			Inheritable: c.Inheritable,
			Permitted:   c.Permitted,
			Ambient:     c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		typ, ok := rlimits[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q: %w", rl.Type, errdefs.ErrInvalid)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: typ, Hard: rl.Hard, Soft: rl.Soft})
	}
	aff, err := configs.ConvertCPUAffinity(p.ExecCPUAffinity)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	lp.CPUAffinity = aff
	return lp, nil
}

var rlimits = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}

// closeAll releases what start opened, after a failed start.
func (s *shim) closeAll() {
	if s.listener != nil {
		s.listener.Close()
		os.Remove(filepath.Join(s.dir, wire.SocketName))
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
	if s.console != nil {
		s.console.Close()
	}
}

// abort kills a started container and removes all of it: the engine did
// not take it.
func (s *shim) abort() {
	_ = s.container.Signal(unix.SIGKILL)
	_, _ = s.init.Wait()
	if err := s.container.Destroy(); err != nil {
		s.log.Warn("destroy", "err", err)
	}
	s.closeAll()
	os.RemoveAll(s.dir)
}
