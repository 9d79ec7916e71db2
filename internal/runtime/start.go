package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// Start starts the container's shim, which creates the container and runs
// its init; it returns the init's pid once it runs. On error nothing is
// left: no shim, no cgroup, no state. A libcontainer error (a missing
// executable: `exec: "nope": executable file not found in $PATH`) comes
// back with its message, wrapping errdefs.ErrInvalid. If ctx ends first,
// the shim removes the container and Start returns ctx's error.
func (r *Runtime) Start(ctx context.Context, req StartRequest) (pid int, err error) {
	if err := validID(req.ID); err != nil {
		return 0, err
	}
	if !filepath.IsAbs(req.Bundle) || !filepath.IsAbs(req.LogPath) {
		return 0, fmt.Errorf("container %q: bundle and log path must be absolute: %w", req.ID, errdefs.ErrInvalid)
	}
	if r.opts.StateDir == "" || r.opts.ShimPath == "" {
		return 0, fmt.Errorf("runtime: StateDir and ShimPath must be set: %w", errdefs.ErrInvalid)
	}
	if err := os.MkdirAll(r.opts.StateDir, 0o711); err != nil {
		return 0, err
	}
	dir := r.dir(req.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("container %q: %w", req.ID, errdefs.ErrAlreadyExists)
		}
		return 0, err
	}
	cleanup := func() { os.RemoveAll(dir) }

	// The report channel is a socket pair: the shim writes its report and
	// waits for our acknowledgement; if we close without one (ctx ended,
	// or the engine died), it removes the container.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		cleanup()
		return 0, err
	}
	// Ours is non-blocking so that Close interrupts a pending Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		cleanup()
		return 0, err
	}
	report := os.NewFile(uintptr(fds[0]), "shim-report")
	defer report.Close()
	child := os.NewFile(uintptr(fds[1]), "shim-report-child")

	cmd := exec.Command(r.opts.ShimPath, r.shimArgs(req)...)
	cmd.Dir = req.Bundle
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.ExtraFiles = []*os.File{child} // fd 3
	// Its own session: no terminal, no signals meant for the engine's
	// process group. Nothing ties its life to the engine's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	child.Close()
	if err != nil {
		cleanup()
		return 0, fmt.Errorf("starting the shim %s: %w", r.opts.ShimPath, err)
	}
	exited := reap(cmd)

	type result struct {
		rep wire.StartReport
		err error
	}
	got := make(chan result, 1)
	go func() {
		var res result
		b, err := io.ReadAll(io.LimitReader(report, 1<<20))
		switch {
		case err != nil:
			res.err = err
		case len(b) == 0:
			res.err = errors.New("the shim exited without a report")
		default:
			res.err = json.Unmarshal(b, &res.rep)
		}
		got <- res
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		report.Close() // the shim sees no acknowledgement and cleans up
		return 0, ctx.Err()
	}
	if res.err == nil && res.rep.Error == "" && res.rep.Pid > 0 {
		if _, err := report.Write([]byte{1}); err == nil {
			return res.rep.Pid, nil
		}
		res.err = errors.New("the shim went away before its start was acknowledged")
	}
	// Failed: the shim cleans up and exits; make sure it did.
	report.Close()
	<-exited
	cleanup()
	if res.rep.Error != "" {
		return 0, wire.RemoteError(res.rep.Error, res.rep.ErrorKind)
	}
	return 0, fmt.Errorf("container %q: %w (shim: %s)", req.ID, res.err, cmd.ProcessState)
}

func (r *Runtime) shimArgs(req StartRequest) []string {
	args := []string{"shim", "--id", req.ID, "--state", r.opts.StateDir, "--bundle", req.Bundle, "--log", req.LogPath}
	for _, f := range []struct {
		set  bool
		name string
	}{
		{req.OpenStdin, "--stdin"},
		{req.StdinOnce, "--stdin-once"},
		{req.Terminal, "--tty"},
		{req.HoldUntilAttach, "--hold"},
	} {
		if f.set {
			args = append(args, f.name)
		}
	}
	return args
}

// reap collects the shim (the engine's child) when it exits, without
// holding a thread meanwhile: it waits for its pidfd in the poller. The
// returned channel is closed once it was collected.
func reap(cmd *exec.Cmd) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitExited(cmd.Process.Pid)
		_ = cmd.Wait()
	}()
	return done
}

// waitExited returns when the child pid has exited (it is not collected).
// Without pidfds it returns at once and the caller's Wait blocks instead.
func waitExited(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0
	})
}
