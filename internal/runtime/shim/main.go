// Package shim is the per-container process of Skiff's container runtime,
// run as `skiff-shim shim ...` by package runtime. It creates the container
// with libcontainer in-process, keeps its init's stdio (writing the output
// to a CRI log file and to attached clients), serves a control socket
// (package wire), reaps the init and records how it exited. It outlives the
// engine that started it, which re-adopts it through the socket.
//
// Only cmd/skiff-shim imports it: it links libcontainer, which must stay
// out of the engine binary, and it sets process-wide runtime knobs.
package shim

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// options are the command line of `skiff-shim shim`.
type options struct {
	id        string
	stateDir  string // the runtime's state root; this container's is stateDir/id
	bundle    string
	logPath   string
	openStdin bool
	stdinOnce bool
	terminal  bool
	// holdUntilAttach creates the init but lets it exec the container's
	// program only when the first attach client connects.
	holdUntilAttach bool
}

// reportFd is where the engine reads the start report (wire.StartReport).
const reportFd = 3

// Main runs the shim with the arguments after "shim" and returns the exit
// code: 0 once the container ran and was reaped, 1 when it could not be
// started (the report says why), 2 for a bad command line.
func Main(args []string) int {
	fs := flag.NewFlagSet("skiff-shim shim", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.id, "id", "", "container ID")
	fs.StringVar(&o.stateDir, "state", "", "runtime state directory (the container's is <state>/<id>, created by the engine)")
	fs.StringVar(&o.bundle, "bundle", "", "OCI bundle directory (config.json)")
	fs.StringVar(&o.logPath, "log", "", "CRI log file for the container's output")
	fs.BoolVar(&o.openStdin, "stdin", false, "keep the container's stdin open for attach")
	fs.BoolVar(&o.stdinOnce, "stdin-once", false, "close the container's stdin when the first attached stdin ends")
	fs.BoolVar(&o.terminal, "tty", false, "give the container a terminal")
	fs.BoolVar(&o.holdUntilAttach, "hold", false, "start the container's program only once a client attaches")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.id == "" || o.stateDir == "" || o.bundle == "" || o.logPath == "" {
		fmt.Fprintln(os.Stderr, "skiff-shim shim: --id, --state, --bundle and --log are required")
		return 2
	}
	tune()
	report := os.NewFile(reportFd, "report")

	dir := filepath.Join(o.stateDir, o.id)
	log := shimLogger(dir)
	// Held for the shim's whole life: the engine knows from it whether
	// the shim is still there (wire.LockName).
	lock, err := lockDir(dir)
	defer runtime.KeepAlive(lock)
	var s *shim
	if err == nil {
		s, err = start(o, dir, log)
	}
	if err != nil {
		os.RemoveAll(dir)
		writeReport(report, wire.StartReport{Error: err.Error(), ErrorKind: wire.KindOf(err)})
		return 1
	}
	if err := writeReport(report, wire.StartReport{Pid: s.pid}); err != nil {
		// The engine gave up on this start (its context ended, or it
		// died): leave nothing behind.
		log.Warn("start not acknowledged; removing the container", "err", err)
		s.abort()
		return 1
	}
	// Return the start-up garbage to the kernel once idle.
	s.trim.busy()
	s.trim.idle()
	return s.run()
}

// tune keeps an idle shim small: one P and a small heap goal (the live
// heap of an idle shim is well under 1 MiB). Transparent huge pages are
// left alone: disabling them (PR_SET_THP_DISABLE, before or after exec)
// made no measurable difference on this kernel, and the setting would be
// inherited by the containers.
func tune() {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(25)
	debug.SetMemoryLimit(16 << 20)
	// No signal is ignored here: ignored signals would be inherited by the
	// container's processes. The shim has no terminal (a new session) and
	// Go returns EPIPE rather than dying on sockets.
}

// shimLogger logs warnings to <dir>/shim.log; the shim's stdio is
// /dev/null.
func shimLogger(dir string) *slog.Logger {
	var w io.Writer = io.Discard
	if f, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600); err == nil {
		w = f
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// writeReport sends r on the report socket and, for a success, waits for
// the engine's acknowledgement (one byte): without it the engine does not
// know the container and it must not stay.
// lockDir takes the shim's lock in dir; it is released when the process
// exits.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, wire.LockName), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another shim serves %s: %w", dir, err)
	}
	return f, nil
}

func writeReport(f *os.File, r wire.StartReport) error {
	defer f.Close()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := unix.Shutdown(int(f.Fd()), unix.SHUT_WR); err != nil {
		return err
	}
	if r.Error != "" {
		return nil
	}
	var ack [1]byte
	if n, err := f.Read(ack[:]); n != 1 {
		return fmt.Errorf("no acknowledgement: %v", err)
	}
	return nil
}
