package podruntime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

// TestAgentRestart: a new Manager on the same directories lists the
// running containers with the same IDs, and they were not restarted.
func TestAgentRestart(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("long", nil)
	id := e.run(sb, "sleeper", "sleep", "1000")
	exited := e.run(sb, "done", "true")
	e.wait(exited)
	before := e.status(id)
	startTime := processStart(t, before.Pid)

	e.restart()

	list, err := e.m.List(context.Background(), sb.PodUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != exited || list[1].ID != id {
		t.Fatalf("after the restart the pod lists %+v", list)
	}
	after := list[1]
	if after.State != StateRunning || after.Pid != before.Pid || !after.StartedAt.Equal(before.StartedAt) {
		t.Errorf("after the restart: %s pid %d started %v; before: pid %d started %v",
			after.State, after.Pid, after.StartedAt, before.Pid, before.StartedAt)
	}
	if got := processStart(t, after.Pid); got != startTime {
		t.Errorf("the process was restarted: start time %s, was %s", got, startTime)
	}
	if list[0].State != StateExited || list[0].ExitCode != 0 || list[0].Reason != ReasonCompleted {
		t.Errorf("the exited container after the restart: %+v", list[0])
	}
	got, ok := e.m.Sandbox(sb.PodUID)
	if !ok || !got.Ready || got.ID != sb.ID || got.IP != sb.IP {
		t.Errorf("the sandbox after the restart: %+v", got)
	}
	// The re-adopted container still answers.
	if out := e.exec(id, "echo", "still here"); out != "still here\n" {
		t.Errorf("exec after the restart: %q", out)
	}
	if err := e.m.Stop(context.Background(), id, time.Second); err != nil {
		t.Fatalf("Stop after the restart: %v", err)
	}
	if st := e.status(id); st.State != StateExited || st.ExitCode != 137 {
		t.Errorf("stopped after the restart: %+v", st)
	}
}

// TestExits: stop with a grace period, exit codes, OOM kills.
func TestExits(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("exits", nil)
	for _, tc := range []struct {
		name       string
		cmd        string
		memory     int64
		grace      time.Duration // Stop with it; 0: wait for the exit
		wantCode   int
		wantReason string
	}{
		{"SIGTERM handled within the grace", `trap "exit 0" TERM; while true; do sleep 0.1; done`, 0, time.Minute, 0, ReasonCompleted},
		{"SIGTERM ignored: killed after the grace", `trap "" TERM; while true; do sleep 0.1; done`, 0, 500 * time.Millisecond, 137, ReasonError},
		{"grace 0 kills at once", `trap "exit 0" TERM; while true; do sleep 0.1; done`, 0, -1, 137, ReasonError},
		{"exit 0", `exit 0`, 0, 0, 0, ReasonCompleted},
		{"exit 3", `exit 3`, 0, 0, 3, ReasonError},
		{"out of memory", `tail /dev/zero`, 16 << 20, 0, 137, ReasonOOMKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			id := e.runConfig(ContainerConfig{
				PodUID: sb.PodUID, Name: strings.NewReplacer(" ", "-", ":", "").Replace(strings.ToLower(tc.name)), Image: "busybox",
				Command: []string{"sh", "-c", tc.cmd}, MemoryLimit: tc.memory,
			})
			if tc.grace != 0 {
				// Let the trap be set before the signal comes.
				e.eventuallyExec(id, "sh", "-c", "ps -o args | grep -q '[s]leep 0.1'")
				if err := e.m.Stop(context.Background(), id, max(tc.grace, 0)); err != nil {
					t.Fatalf("Stop: %v", err)
				}
			}
			st := e.wait(id)
			if st.State != StateExited || st.ExitCode != tc.wantCode || st.Reason != tc.wantReason {
				t.Errorf("got %s, exit code %d, reason %q; want exited, %d, %q", st.State, st.ExitCode, st.Reason, tc.wantCode, tc.wantReason)
			}
			if st.FinishedAt.Before(st.StartedAt) || st.StartedAt.IsZero() {
				t.Errorf("started %v, finished %v", st.StartedAt, st.FinishedAt)
			}
			// Stopping it again is fine.
			if err := e.m.Stop(context.Background(), id, time.Second); err != nil {
				t.Errorf("Stop of an exited container: %v", err)
			}
		})
	}
}

// TestCreateErrors: failures carry the kubelet's reasons and leave nothing.
func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("errors", nil)
	root := int64(0)
	for _, tc := range []struct {
		name     string
		c        ContainerConfig
		wantKind error
		wantMsg  string
	}{
		{"missing executable", ContainerConfig{Command: []string{"nope"}}, errdefs.ErrInvalid, `exec: "nope": executable file not found in $PATH`},
		{"runAsNonRoot and the image's root", ContainerConfig{Command: []string{"true"}, RunAsNonRoot: true}, errdefs.ErrInvalid, "container has runAsNonRoot and image will run as root"},
		{"runAsNonRoot and runAsUser 0", ContainerConfig{Command: []string{"true"}, RunAsNonRoot: true, User: &root}, errdefs.ErrInvalid, "container's runAsUser breaks non-root policy"},
		{"image not present", ContainerConfig{Image: "example.com/nope:1", Command: []string{"true"}}, errdefs.ErrNotFound, "example.com/nope:1"},
		{"no sandbox", ContainerConfig{PodUID: "no-such-pod", Command: []string{"true"}}, errdefs.ErrNotFound, "no sandbox"},
		{"bad memory limit", ContainerConfig{Command: []string{"true"}, MemoryLimit: 1 << 20}, errdefs.ErrInvalid, "memory limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Name = "c"
			if c.PodUID == "" {
				c.PodUID = sb.PodUID
			}
			if c.Image == "" {
				c.Image = "busybox"
			}
			id, err := e.m.CreateAndStart(context.Background(), c)
			if !errors.Is(err, tc.wantKind) || !strings.Contains(errdefs.Message(err), tc.wantMsg) {
				t.Errorf("got %q, %v; want a %v error with %q", id, err, tc.wantKind, tc.wantMsg)
			}
			if list, _ := e.m.List(context.Background(), sb.PodUID); len(list) != 0 || id != "" {
				t.Errorf("a failed create left %q and %+v", id, list)
			}
		})
	}
	if left := mountsUnder(e.m.containerRunRoot()); len(left) > 0 {
		t.Errorf("failed creates left mounts: %s", left)
	}
	entries, _ := os.ReadDir(e.m.containerDataRoot())
	if len(entries) > 0 {
		t.Errorf("failed creates left %d container directories", len(entries))
	}

	// Same name and attempt twice.
	e.run(sb, "twice", "sleep", "1000")
	_, err := e.m.CreateAndStart(context.Background(), ContainerConfig{PodUID: sb.PodUID, Name: "twice", Image: "busybox", Command: []string{"true"}})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("the same name and attempt again: %v", err)
	}
}

// TestEnsureImage: pull policies and the errors of a failed pull.
func TestEnsureImage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	busybox, err := e.images.Resolve(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		ref      string
		policy   corev1.PullPolicy
		wantID   string
		wantKind error
		wantMsg  string
	}{
		{"present, IfNotPresent", "busybox", corev1.PullIfNotPresent, busybox.ID.String(), nil, ""},
		{"present, Never", "busybox:latest", corev1.PullNever, busybox.ID.String(), nil, ""},
		{"by ID", busybox.ID.String(), "", busybox.ID.String(), nil, ""},
		{"missing, Never", "example.com/app:1", corev1.PullNever, "", errdefs.ErrNotFound, `container image "example.com/app:1" is not present with pull policy of Never`},
		// A registry on loopback that nobody serves: the pull fails.
		{"missing, registry down", "127.0.0.1:1/app:1", corev1.PullIfNotPresent, "", errdefs.ErrUnavailable, `failed to pull image "127.0.0.1:1/app:1"`},
		{"Always, registry down", "127.0.0.1:1/busybox:1", corev1.PullAlways, "", errdefs.ErrUnavailable, "dial tcp 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.m.EnsureImage(ctx, tc.ref, tc.policy, []Credential{{Registry: "127.0.0.1:1", Username: "u", Password: "p"}})
			if tc.wantKind == nil {
				if err != nil || id != tc.wantID {
					t.Errorf("got %q, %v; want %s", id, err, tc.wantID)
				}
				return
			}
			if !errors.Is(err, tc.wantKind) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("got %q, %v; want a %v error with %q", id, err, tc.wantKind, tc.wantMsg)
			}
		})
	}
}

// TestRemoveSandboxLeavesNothing: after its containers are removed, a
// sandbox's removal leaves no namespace files, mounts, veths, cgroups or
// shims; removing it again is fine, and containers still there are
// removed with it.
func TestRemoveSandboxLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		share       bool
		removeFirst bool
	}{
		{"containers removed first", false, true},
		{"shared PID namespace", true, true},
		{"containers still running", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			sb := e.runPod("gone", func(c *SandboxConfig) { c.ShareProcessNamespace = tc.share })
			a := e.runConfig(ContainerConfig{
				PodUID: sb.PodUID, Name: "a", Image: "busybox", Command: []string{"sh", "-c", "echo bye > /dev/termination-log; sleep 1000"},
				TerminationMessagePath: "/dev/termination-log",
			})
			b := e.run(sb, "b", "sleep", "1000")
			if tc.removeFirst {
				e.eventuallyExec(a, "grep", "-q", "bye", "/dev/termination-log")
				for _, id := range []string{a, b} {
					if err := e.m.Stop(ctx, id, 0); err != nil {
						t.Fatal(err)
					}
				}
				st := e.status(a)
				if msg, _ := os.ReadFile(st.TerminationMessagePath); string(msg) != "bye\n" {
					t.Errorf("termination message %q", msg)
				}
				for _, id := range []string{a, b} {
					if err := e.m.Remove(ctx, id); err != nil {
						t.Fatal(err)
					}
					if err := e.m.Remove(ctx, id); err != nil {
						t.Errorf("Remove again: %v", err)
					}
				}
				if _, err := os.Stat(st.LogPath); !os.IsNotExist(err) {
					t.Errorf("the log file is left: %v", err)
				}
			}
			if err := e.m.RemoveSandbox(ctx, sb.PodUID); err != nil {
				t.Fatal(err)
			}
			e.checkNothingLeft(sb, []string{a, b})
			if err := e.m.RemoveSandbox(ctx, sb.PodUID); err != nil {
				t.Errorf("RemoveSandbox again: %v", err)
			}
			if _, ok := e.m.Sandbox(sb.PodUID); ok {
				t.Error("the sandbox is still reported")
			}
			if list, _ := e.m.List(ctx, sb.PodUID); len(list) > 0 {
				t.Errorf("containers are still listed: %+v", list)
			}
			if _, err := os.Stat(e.m.podLogDir(sb.Namespace, sb.Name, sb.PodUID)); !os.IsNotExist(err) {
				t.Errorf("the pod's log directory is left: %v", err)
			}
		})
	}
}

// TestStartCollectsLeftovers: what a crash leaves (a sandbox being
// created, directories and mounts without records) is gone after Start.
func TestStartCollectsLeftovers(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("interrupted", nil)
	// As if the agent died before the sandbox was ready.
	var rec sandboxRecord
	path := filepath.Join(e.m.sandboxRecordDir(), sb.ID+".json")
	must(t, readJSON(path, &rec))
	rec.State = stateCreating
	must(t, saveJSON(path, &rec))
	// A container directory whose record was never written, with its
	// root filesystem mounted.
	stray := filepath.Join(e.m.containerRunRoot(), newID(), "rootfs")
	must(t, os.MkdirAll(stray, 0o755))
	must(t, mountShm(stray))
	must(t, os.MkdirAll(e.m.containerDataDir(newID()), 0o755))

	e.restart()

	if _, ok := e.m.Sandbox(sb.PodUID); ok {
		t.Error("the interrupted sandbox is still there")
	}
	e.checkNothingLeft(sb, nil)
	for _, root := range []string{e.m.containerRunRoot(), e.m.containerDataRoot()} {
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Errorf("%s still holds %d entries", root, len(entries))
		}
	}
	if eps := e.nets.Endpoints(PodNetwork); len(eps) > 0 {
		t.Errorf("endpoints left on the pods network: %+v", eps)
	}
}

// TestConcurrentPods: pods come and go at once while the pod list is
// read; every pod gets its own IP and nothing is left.
func TestConcurrentPods(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 6
	stop := make(chan struct{})
	listed := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				listed <- nil
				return
			default:
			}
			if _, err := e.m.List(ctx, ""); err != nil {
				listed <- err
				return
			}
		}
	}()
	ips := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- func() error {
				sb, err := e.m.RunSandbox(ctx, SandboxConfig{PodUID: newUID(), Namespace: "default", Name: "pod-" + strconv.Itoa(i)})
				if err != nil {
					return err
				}
				ips <- sb.IP
				id, err := e.m.CreateAndStart(ctx, ContainerConfig{PodUID: sb.PodUID, Name: "c", Image: "busybox", Command: []string{"sleep", "100"}})
				if err != nil {
					return err
				}
				if err := e.m.Stop(ctx, id, 0); err != nil {
					return err
				}
				return e.m.RemoveSandbox(ctx, sb.PodUID)
			}()
		}()
	}
	seen := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	if err := <-listed; err != nil {
		t.Errorf("List: %v", err)
	}
	close(ips)
	for ip := range ips {
		if seen[ip] {
			t.Errorf("IP %s given twice", ip)
		}
		seen[ip] = true
	}
	if got := e.m.Sandboxes(); len(got) > 0 {
		t.Errorf("sandboxes left: %+v", got)
	}
	for _, mp := range mountsUnder(e.dir) {
		if mp != e.inet {
			t.Errorf("mount left: %s", mp)
		}
	}
}
