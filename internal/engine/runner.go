package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/crilog"
	"skiff.dev/skiff/internal/runtime/oci"
)

var _ build.Runner = (*Engine)(nil)

// Run executes a Dockerfile RUN step: the stage's layers as overlay lowers
// with req.UpperDir on top, in a container with its own (loopback-only)
// network, the stage's env, user and workdir. Its output goes to
// req.Stdout/Stderr; a non-zero exit is an error naming the code.
func (e *Engine) Run(ctx context.Context, req build.RunRequest) error {
	id := "build-" + newID()[:24]
	dir, err := os.MkdirTemp(e.opts.RunDir, id+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lowers, err := e.opts.Snapshots.Lowers(ctx, req.Layers, req.DiffIDs)
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := snapshot.Mount(rootfs, lowers, req.UpperDir, filepath.Join(dir, "work")); err != nil {
		return err
	}
	defer snapshot.Unmount(rootfs)
	workdir := req.WorkDir
	if workdir == "" {
		workdir = "/"
	}
	if err := mkdirIn(rootfs, workdir); err != nil {
		return err
	}
	ns := filepath.Join(dir, "netns")
	if err := netns.Create(ns); err != nil {
		return fmt.Errorf("RUN: network namespace: %w", err)
	}
	defer netns.Delete(ns)
	hosts := filepath.Join(dir, "hosts")
	if err := atomicfile.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644); err != nil {
		return err
	}
	spec, err := oci.Spec(oci.Config{
		ID:         id,
		Rootfs:     rootfs,
		Args:       req.Cmd,
		Env:        req.Env,
		Cwd:        workdir,
		User:       req.User,
		Hostname:   id[:12],
		HostsPath:  hosts,
		NetNS:      ns,
		CgroupPath: "/skiff/" + id,
	})
	if err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "run.log")
	if _, err := e.opts.Runtime.Start(ctx, runtime.StartRequest{ID: id, Bundle: bundle, LogPath: logPath}); err != nil {
		return err
	}
	defer e.opts.Runtime.Delete(context.WithoutCancel(ctx), id)
	st, err := e.opts.Runtime.Wait(ctx, id)
	if err != nil {
		return err
	}
	if err := writeLog(ctx, logPath, crilog.ReadOptions{}, req.Stdout, req.Stderr); err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("The command '%s' returned a non-zero code: %d: %w", shellJoin(req.Cmd), st.Code, errdefs.ErrInvalid)
	}
	return nil
}
