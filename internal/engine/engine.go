// Package engine is Skiff's container engine: Docker's job. It keeps
// containers, named volumes and container networks, starts containers from
// images through the runtime (libcontainer under per-container shims),
// applies restart policies, and implements dockerapi.Backend so the Docker
// Engine API — and through it the docker CLI and Skiff's own verbs — drive
// it. Only the daemon wires it; the node agent will reuse its parts.
package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/runtime"
)

var _ dockerapi.Backend = (*Engine)(nil)

// Runtime runs containers; *runtime.Runtime implements it.
type Runtime interface {
	Start(ctx context.Context, req runtime.StartRequest) (int, error)
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	Wait(ctx context.Context, id string) (runtime.ExitStatus, error)
	State(ctx context.Context, id string) (runtime.State, error)
	Attach(ctx context.Context, id string, s runtime.Streams) error
	Resize(ctx context.Context, id string, width, height uint16) error
	Exec(ctx context.Context, id string, req runtime.ExecRequest) (int, error)
	Processes(ctx context.Context, id string) ([]int, error)
	Stats(ctx context.Context, id string) (*cgroups.Stats, error)
	Delete(ctx context.Context, id string) error
}

// Networks attaches containers to bridge networks; *bridge.Manager
// implements it.
type Networks interface {
	CreateNetwork(ctx context.Context, c bridge.NetworkConfig) (bridge.Network, error)
	RemoveNetwork(ctx context.Context, id string) error
	Networks() []bridge.Network
	Attach(ctx context.Context, r bridge.AttachRequest) (bridge.Endpoint, error)
	Detach(ctx context.Context, networkID, containerID string) error
	DNSServer(networkID string) string
}

// Options configure an Engine.
type Options struct {
	// DataDir holds containers, volumes and network state (persistent).
	DataDir string
	// RunDir holds network namespaces and runtime state (tmpfs; gone
	// after a reboot, like the containers themselves).
	RunDir string
	Store  *content.Store
	Images *images.Service
	// Snapshots unpack image layers; Builder builds images (RUN steps run
	// through the engine).
	Snapshots *snapshot.Store
	Runtime   Runtime
	Networks  Networks
	Logger    *slog.Logger
	// HostResolvConf is copied into containers not on a network with DNS
	// (default /etc/resolv.conf).
	HostResolvConf string
	// Now is the clock (tests).
	Now func() time.Time
}

// Engine is the container engine. Create it with New and call Start.
type Engine struct {
	opts    Options
	log     *slog.Logger
	ctrs    *containers
	execs   *execs
	events  *eventLog
	volumes *volumes
	builder *build.Builder

	// ctx is the engine's lifetime (monitor goroutines); set by Start.
	ctx context.Context
	wg  sync.WaitGroup
}

// New returns an Engine; it does no I/O.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HostResolvConf == "" {
		opts.HostResolvConf = "/etc/resolv.conf"
	}
	e := &Engine{
		opts:    opts,
		log:     opts.Logger.With("component", "engine"),
		ctrs:    newContainers(filepath.Join(opts.DataDir, "containers")),
		execs:   newExecs(),
		events:  newEventLog(1024),
		volumes: newVolumes(filepath.Join(opts.DataDir, "volumes")),
	}
	e.builder = build.New(opts.Store, e)
	return e
}

// Start loads the engine's state, re-adopts containers whose shims kept
// running, and restarts those whose restart policy asks for it. Containers
// are monitored until ctx ends.
func (e *Engine) Start(ctx context.Context) error {
	e.ctx = ctx
	for _, d := range []string{e.ctrs.dir, e.volumes.dir, e.opts.RunDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	if err := e.ensureDefaultNetwork(ctx); err != nil {
		return err
	}
	loaded, err := e.ctrs.load()
	if err != nil {
		return err
	}
	for _, c := range loaded {
		e.adopt(ctx, c)
	}
	return nil
}

// Wait blocks until every monitor goroutine has returned (after the
// context given to Start ends).
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) now() time.Time { return e.opts.Now() }

// discard is an io.Writer for unwanted progress.
var discard io.Writer = io.Discard
