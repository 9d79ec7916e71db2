package shim

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// Bounds of the shutdown after the init exited.
const (
	// outputDrain: after the container is destroyed nothing should hold
	// its pipes, but a process outside it might (a shared PID namespace).
	outputDrain = 5 * time.Second
	// clientDrain: in-flight answers (waiters, exec exit frames).
	clientDrain = 2 * time.Second
)

// run waits for the init to exit, records how, removes the container and
// returns the shim's exit code.
func (s *shim) run() int {
	st, err := s.init.Wait()
	close(s.initExited)
	status := wire.ExitStatus{Code: exitCode(st, err), FinishedAt: time.Now().UTC()}
	status.OOMKilled = s.oomKilled()

	s.mu.Lock()
	s.exit = &status // from now on the container is reported as exited
	s.mu.Unlock()

	// Destroy kills what is left (shared PID namespace only; otherwise
	// the kernel did) and removes the cgroup and libcontainer's state.
	if err := s.container.Destroy(); err != nil {
		s.log.Warn("destroy", "err", err)
	}
	drained := make(chan struct{})
	go func() {
		s.pumps.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(outputDrain):
		s.log.Warn("output not drained; closing the log anyway")
	}
	if err := s.logFile.Close(); err != nil {
		s.log.Warn("log close", "err", err)
	}
	s.closeStdin()
	if s.console != nil {
		s.console.Close()
	}

	b, _ := json.Marshal(status)
	if err := atomicfile.WriteFile(filepath.Join(s.dir, wire.ExitName), b, 0o644); err != nil {
		s.log.Error("writing the exit status", "err", err)
	}
	close(s.done) // waiters answer now
	s.out.end()   // attached clients are done

	s.listener.Close()
	<-s.served
	os.Remove(filepath.Join(s.dir, wire.SocketName))
	finished := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(clientDrain):
	}
	reapAll()
	return 0
}

// exitCode is a process's exit code, 128+signal when a signal ended it,
// and 255 when it cannot be known.
func exitCode(st *os.ProcessState, err error) int {
	if st == nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			st = ee.ProcessState
		}
	}
	if st == nil {
		return 255
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok {
		return st.ExitCode()
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// oomKilled reports whether the kernel's OOM killer killed a process of
// the container's memory cgroup (its cgroup is new, so any kill counts).
func (s *shim) oomKilled() bool {
	var n uint64
	var err error
	if cgroups.IsCgroup2UnifiedMode() {
		n, err = fs2.OOMKillCount(s.cgroupPaths[""])
	} else {
		path := s.cgroupPaths["memory"]
		if path == "" {
			return false
		}
		n, err = fs.OOMKillCount(path)
	}
	if err != nil {
		s.log.Warn("reading the OOM kill count", "err", err)
		return false
	}
	return n > 0
}

// reapAll collects any child the shim still has (exec processes whose
// waiters gave up), so none is left a zombie.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
