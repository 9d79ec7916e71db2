package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

func TestRunToExit(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		wantLog string // stream tag content lines
	}{
		{"echo", []string{"echo", "hi"}, 0, "stdout F hi\n"},
		{"exit code", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"stderr", []string{"sh", "-c", "echo out; echo oops >&2"}, 0, "stdout F out\nstderr F oops\n"},
		{"no final newline", []string{"printf", "a\\nbc"}, 0, "stdout F a\nstdout P bc\n"},
		{"absolute path", []string{"/bin/true"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := containerID(t)
			c := e.start(e.spec(id, tt.args...), id, runtime.StartRequest{})
			if c.pid <= 0 {
				t.Errorf("pid = %d", c.pid)
			}
			st := e.wait(id)
			if st.Code != tt.code || st.OOMKilled {
				t.Errorf("exit = %+v, want code %d", st, tt.code)
			}
			if st.FinishedAt.IsZero() || time.Since(st.FinishedAt) > time.Minute {
				t.Errorf("FinishedAt = %v", st.FinishedAt)
			}
			// The order of stdout and stderr lines between each other is
			// the order the shim read them in: compare each stream's.
			entries := logEntries(t, c.log)
			if got := logText(entries); byStream(got) != byStream(tt.wantLog) {
				t.Errorf("log:\n%s\nwant:\n%s", got, tt.wantLog)
			}
			raw, _ := os.ReadFile(c.log)
			for _, line := range strings.SplitAfter(string(raw), "\n") {
				if line == "" {
					continue
				}
				// 2016-10-06T00:17:09.669794202Z stdout F hello
				f := strings.SplitN(line, " ", 4)
				if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil || !strings.HasSuffix(f[0], "Z") {
					t.Errorf("log line %q: want an RFC 3339 UTC timestamp", line)
				}
			}
			// Exited: the state says so, and nothing is left but the record.
			s, err := e.rt.State(context.Background(), id)
			if err != nil || s.Running || s.Exit == nil || s.Exit.Code != tt.code {
				t.Errorf("State = %+v, %v", s, err)
			}
			if left := cgroupDirs(id); len(left) > 0 {
				t.Errorf("cgroup left after exit: %v", left)
			}
			eventually(t, "the shim exits", func() bool { return len(shimPids(id)) == 0 })
		})
	}
}

func TestStartFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not in PATH", []string{"nope"}, `exec: "nope": executable file not found in $PATH`},
		{"absolute path", []string{"/bin/nope"}, `exec: "/bin/nope": stat /bin/nope: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := containerID(t)
			_, err := e.tryStart(e.spec(id, tt.args...), id, runtime.StartRequest{})
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if _, err := os.Stat(filepath.Join(e.opts.StateDir, id)); !os.IsNotExist(err) {
				t.Errorf("state directory left: %v", err)
			}
			if left := leftovers(id); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if _, err := e.rt.State(context.Background(), id); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("State = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	e.start(e.spec(id, "sleep", "100"), id, runtime.StartRequest{})
	_, err := e.tryStart(e.spec(id, "true"), id, runtime.StartRequest{})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Start = %v, want ErrAlreadyExists", err)
	}
	ctx := context.Background()
	for _, bad := range []string{"", "..", "a/b", "a b"} {
		if _, err := e.rt.Start(ctx, runtime.StartRequest{ID: bad, Bundle: "/x", LogPath: "/x/log"}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Start(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := e.rt.Delete(ctx, id); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Delete(running) = %v, want ErrConflict", err)
	}
	if _, err := e.rt.State(ctx, "unknown"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State(unknown) = %v, want ErrNotFound", err)
	}
}

func TestStartCanceledLeavesNothing(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	bundle := t.TempDir()
	writeSpec(t, bundle, e.spec(id, "sleep", "100"))
	t.Cleanup(func() { e.remove(id) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.rt.Start(ctx, runtime.StartRequest{ID: id, Bundle: bundle, LogPath: filepath.Join(bundle, "log")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	eventually(t, "the shim removes the canceled container", func() bool {
		_, err := os.Stat(filepath.Join(e.opts.StateDir, id))
		return os.IsNotExist(err) && len(leftovers(id)) == 0
	})
}

func TestIsolation(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	script := `cat /proc/1/cmdline | tr '\0' ' '; echo; hostname; ps -o pid,args | wc -l; cat /proc/self/cgroup`
	c := e.start(e.spec(id, "sh", "-c", script), id, runtime.StartRequest{})
	// The init is in the container's cgroup, seen from the host.
	procs, err := os.ReadFile("/sys/fs/cgroup/memory/skiff/" + id + "/cgroup.procs")
	if err == nil && !strings.Contains(string(procs), strconv.Itoa(c.pid)) {
		t.Errorf("init pid %d not in the memory cgroup's procs %q", c.pid, procs)
	}
	if st := e.wait(id); st.Code != 0 {
		t.Fatalf("exit %d", st.Code)
	}
	var lines []string
	for _, en := range logEntries(t, c.log) {
		lines = append(lines, string(en.Content))
	}
	t.Logf("container output:\n%s", strings.Join(lines, "\n"))
	if len(lines) < 4 {
		t.Fatalf("short output %q", lines)
	}
	if want := "sh -c " + script; strings.TrimSpace(lines[0]) != want {
		t.Errorf("/proc/1/cmdline = %q, want the container's own init %q", lines[0], want)
	}
	if lines[1] != "skiff-test" {
		t.Errorf("hostname %q, want the spec's", lines[1])
	}
	// ps's header, sh (pid 1), ps, and wc: nothing of the host.
	if n, _ := strconv.Atoi(strings.TrimSpace(lines[2])); n < 2 || n > 5 {
		t.Errorf("ps shows %s lines, want only the container's processes", lines[2])
	}
	// Its cgroup is the spec's (or the root, with a cgroup namespace).
	cg := strings.Join(lines[3:], "\n")
	if !strings.Contains(cg, ":memory:/skiff/"+id+"\n") && !strings.Contains(cg, ":memory:/\n") {
		t.Errorf("/proc/self/cgroup has not the container's memory cgroup: %q", cg)
	}
}

func TestOOMKilled(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	// The shell keeps the command's output in memory: 200 MB against a
	// 64 MiB limit.
	spec := e.spec(id, "sh", "-c", `x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}`)
	limit := int64(64 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	c := e.start(spec, id, runtime.StartRequest{})
	st := e.wait(id)
	if !st.OOMKilled || st.Code != 137 {
		t.Errorf("exit = %+v, want OOMKilled with code 137; log:\n%s", st, logText(logEntries(t, c.log)))
	}
}

func TestKill(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		sharePID bool
		all      bool
		hold     bool
		args     []string
		sig      syscall.Signal
		code     int
	}{
		// An init ignores signals it has no handler for, except SIGKILL.
		{name: "SIGKILL to the init", args: []string{"sleep", "1000"}, sig: syscall.SIGKILL, code: 137},
		{name: "SIGTERM handled by the init", args: []string{"sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.05; done"}, sig: syscall.SIGTERM, code: 143},
		// Without its own PID namespace the default action applies.
		{name: "SIGTERM without a PID namespace", sharePID: true, args: []string{"sleep", "1000"}, sig: syscall.SIGTERM, code: 143},
		// The init's children die; its `wait $!` returns 128+15.
		{name: "SIGTERM to all", all: true, args: []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait $!"}, sig: syscall.SIGTERM, code: 143},
		{name: "SIGKILL to a held init", hold: true, args: []string{"sleep", "1000"}, sig: syscall.SIGKILL, code: 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := containerID(t)
			spec := e.spec(id, tt.args...)
			if tt.sharePID {
				removeNamespace(spec, specs.PIDNamespace)
			}
			e.start(spec, id, runtime.StartRequest{HoldUntilAttach: tt.hold})
			ctx := context.Background()
			if s, err := e.rt.State(ctx, id); err != nil || !s.Running {
				t.Fatalf("State = %+v, %v", s, err)
			}
			time.Sleep(100 * time.Millisecond) // let the shell install its trap or start its children
			kill := e.rt.Kill
			if tt.all {
				kill = e.rt.KillAll
			}
			if err := kill(ctx, id, tt.sig); err != nil {
				t.Fatal(err)
			}
			if st := e.wait(id); st.Code != tt.code {
				t.Errorf("code %d, want %d", st.Code, tt.code)
			}
			if err := e.rt.Kill(ctx, id, tt.sig); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("Kill after exit = %v, want ErrConflict", err)
			}
		})
	}
}

func TestProcessesAndStats(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	c := e.start(e.spec(id, "sh", "-c", "sleep 1000 & sleep 1000 & wait"), id, runtime.StartRequest{})
	ctx := context.Background()
	var pids []int
	eventually(t, "three processes", func() bool {
		var err error
		pids, err = e.rt.Processes(ctx, id)
		return err == nil && len(pids) == 3
	})
	found := false
	for _, p := range pids {
		found = found || p == c.pid
	}
	if !found {
		t.Errorf("Processes %v lack the init %d", pids, c.pid)
	}
	st, err := e.rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryStats.Usage.Usage == 0 || st.PidsStats.Current != 3 {
		t.Errorf("stats: memory %d, pids %d", st.MemoryStats.Usage.Usage, st.PidsStats.Current)
	}
	t.Logf("cpu %d ns, memory %d (limit %d), pids %d", st.CpuStats.CpuUsage.TotalUsage, st.MemoryStats.Usage.Usage, st.MemoryStats.Usage.Limit, st.PidsStats.Current)
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ids, err := e.rt.List(context.Background())
	if err != nil || len(ids) != 0 {
		t.Fatalf("List = %v, %v", ids, err)
	}
	a, b := containerID(t)+"a", containerID(t)+"b"
	e.start(e.spec(a, "sleep", "1000"), a, runtime.StartRequest{})
	e.start(e.spec(b, "true"), b, runtime.StartRequest{})
	e.wait(b)
	ids, err = e.rt.List(context.Background())
	want := []string{a, b}
	slices.Sort(want) // List is in name order; the IDs' random parts decide it
	if err != nil || !slices.Equal(ids, want) {
		t.Errorf("List = %v, %v; want %v", ids, err, want)
	}
}

// byStream orders log text lines by stream, keeping each stream's order.
func byStream(text string) string {
	lines := strings.SplitAfter(text, "\n")
	slices.SortStableFunc(lines, func(a, b string) int {
		sa, _, _ := strings.Cut(a, " ")
		sb, _, _ := strings.Cut(b, " ")
		return strings.Compare(sa, sb)
	})
	return strings.Join(lines, "")
}

func removeNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
}
