package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/crilog"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// env is a runtime on a temporary state directory with a busybox rootfs.
type env struct {
	t      testing.TB
	opts   runtime.Options
	rt     *runtime.Runtime
	rootfs string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	e := &env{t: t, rootfs: runtimetest.BusyboxRootfs(t)}
	e.opts = runtime.Options{
		StateDir: t.TempDir(),
		ShimPath: runtimetest.ShimBinary(t),
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	e.rt = runtime.New(e.opts)
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// containerID makes an ID unique across the tests of this process (cgroup
// paths are global).
func containerID(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "_", "#", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), time.Now().UnixNano()%1e6)
}

// spec is specconv's example made to run args in the busybox rootfs.
func (e *env) spec(id string, args ...string) *specs.Spec {
	s := specconv.Example()
	s.Root.Path = e.rootfs
	s.Root.Readonly = false
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Env = []string{"PATH=/bin", "HOME=/root"}
	s.Hostname = "skiff-test"
	s.Linux.CgroupsPath = "/skiff/" + id
	return s
}

type container struct {
	id, bundle, log string
	pid             int
}

// start starts spec as a new container and removes everything of it at
// cleanup, also when the test failed.
func (e *env) start(spec *specs.Spec, id string, req runtime.StartRequest) *container {
	e.t.Helper()
	c, err := e.tryStart(spec, id, req)
	if err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	return c
}

func (e *env) tryStart(spec *specs.Spec, id string, req runtime.StartRequest) (*container, error) {
	e.t.Helper()
	bundle := e.t.TempDir()
	writeSpec(e.t, bundle, spec)
	c := &container{id: id, bundle: bundle, log: filepath.Join(bundle, "container.log")}
	req.ID, req.Bundle, req.LogPath = id, bundle, c.log
	e.t.Cleanup(func() { e.remove(id) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	c.pid, err = e.rt.Start(ctx, req)
	return c, err
}

func writeSpec(t testing.TB, bundle string, spec *specs.Spec) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// remove kills and deletes the container, then checks (and forces) that
// nothing of it is left.
func (e *env) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.rt.Kill(ctx, id, syscall.SIGKILL); err == nil {
		if _, err := e.rt.Wait(ctx, id); err != nil {
			e.t.Errorf("cleanup: Wait: %v", err)
		}
	}
	if err := e.rt.Delete(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		e.t.Errorf("cleanup: Delete: %v", err)
	}
	if left := leftovers(id); len(left) > 0 {
		e.t.Errorf("cleanup: left behind: %s", strings.Join(left, "; "))
		forceRemove(id)
	}
}

// cgroupDirs are the container's cgroup directories that exist.
func cgroupDirs(id string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/skiff/" + id)
	return dirs
}

// shimPids are the pids of shims serving id.
func shimPids(id string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[1] == "shim" && strings.Contains(string(cmdline), "\x00--id\x00"+id+"\x00") {
			if st, err := os.ReadFile("/proc/" + d.Name() + "/stat"); err == nil && isZombie(st) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

// leftovers lists what is left of a container, giving a shim that just
// recorded its container's exit a moment to go.
func leftovers(id string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for len(shimPids(id)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var left []string
	for _, d := range cgroupDirs(id) {
		left = append(left, "cgroup "+d)
	}
	for _, pid := range shimPids(id) {
		left = append(left, fmt.Sprintf("shim pid %d", pid))
	}
	return left
}

// forceRemove kills and removes what a broken test left.
func forceRemove(id string) {
	for _, pid := range shimPids(id) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, d := range cgroupDirs(id) {
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range cgroupDirs(id) {
		for os.Remove(d) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// wait waits for the container's exit with a generous timeout.
func (e *env) wait(id string) runtime.ExitStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := e.rt.Wait(ctx, id)
	if err != nil {
		e.t.Fatalf("Wait: %v", err)
	}
	return st
}

// logEntries reads a container's CRI log.
func logEntries(t testing.TB, path string) []crilog.Entry {
	t.Helper()
	var entries []crilog.Entry
	err := crilog.ReadFile(context.Background(), path, crilog.ReadOptions{}, func(e crilog.Entry) error {
		e.Content = bytes.Clone(e.Content)
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	return entries
}

// logText renders entries as "stream tag content" lines.
func logText(entries []crilog.Entry) string {
	var b strings.Builder
	for _, e := range entries {
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		fmt.Fprintf(&b, "%s %s %s\n", e.Stream, tag, e.Content)
	}
	return b.String()
}

// eventually retries cond until it holds or 10 s passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
