package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/engine"
	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/version"
)

// EngineOptions configure the container engine role (`skiff engine`).
type EngineOptions struct {
	// DataDir is Skiff's data directory: images, layers, containers,
	// volumes and networks live under it.
	DataDir string
	// RunDir holds runtime state and network namespaces (default
	// /run/skiff).
	RunDir string
	// Socket is where the Docker Engine API listens (default
	// RunDir/docker.sock).
	Socket string
	// ShimPath is the skiff-shim binary (default: beside this executable,
	// then $PATH).
	ShimPath string
	Logger   *slog.Logger
	// Ready, if not nil, is closed once the API answers.
	Ready chan<- struct{}
}

// RunEngine runs the container engine and serves the Docker Engine API on
// a unix socket until ctx ends. Containers keep running after it returns.
func RunEngine(ctx context.Context, o EngineOptions) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RunDir == "" {
		o.RunDir = "/run/skiff"
	}
	if o.Socket == "" {
		o.Socket = filepath.Join(o.RunDir, "docker.sock")
	}
	shim, err := findShim(o.ShimPath)
	if err != nil {
		return err
	}
	store := content.New(filepath.Join(o.DataDir, "images"))
	if err := store.Init(); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	var eng *engine.Engine
	imgs := images.New(store, images.WithInUse(func(id string) bool { return eng.ImageInUse(id) }))
	nets := bridge.New(bridge.Options{StateDir: filepath.Join(o.DataDir, "networks"), Logger: o.Logger})
	eng = engine.New(engine.Options{
		DataDir:   o.DataDir,
		RunDir:    o.RunDir,
		Store:     store,
		Images:    imgs,
		Snapshots: snapshot.New(filepath.Join(o.DataDir, "layers"), store),
		Runtime:   runtime.New(runtime.Options{StateDir: filepath.Join(o.RunDir, "runtime"), ShimPath: shim, Logger: o.Logger}),
		Networks:  nets,
		Logger:    o.Logger,
	})
	if err := nets.Start(ctx); err != nil {
		return fmt.Errorf("container networks: %w", err)
	}
	defer nets.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		return err
	}
	defer eng.Wait()

	l, err := listenUnix(o.Socket)
	if err != nil {
		return err
	}
	o.Logger.Info("container engine ready", "component", "engine", "socket", o.Socket)
	if o.Ready != nil {
		close(o.Ready)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	api := dockerapi.New(eng, dockerapi.Options{
		Logger:        o.Logger,
		Version:       version.Version,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]),
	})
	err = api.Serve(ctx, l)
	cancel()
	return err
}

// listenUnix listens on path, replacing a stale socket left by a killed
// engine, readable by root (and the docker group's convention is not used).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("another engine is serving %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// findShim locates the skiff-shim binary.
func findShim(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "skiff-shim")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("skiff-shim")
	if err != nil {
		return "", errors.New("skiff-shim not found beside skiff or in $PATH (make build puts it in bin/)")
	}
	return p, nil
}
