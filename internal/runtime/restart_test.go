package runtime_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/runtime"
)

// TestEngineRestart drops the Runtime that started two containers and
// uses a new one on the same state directory, as an engine does after a
// restart: the running one is re-adopted, the one that exited meanwhile
// reports how.
func TestEngineRestart(t *testing.T) {
	e := newEnv(t)
	running, exited := containerID(t)+"r", containerID(t)+"x"
	r := e.start(e.spec(running, "cat"), running, runtime.StartRequest{OpenStdin: true})
	e.start(e.spec(exited, "sh", "-c", "exit 5"), exited, runtime.StartRequest{})
	// "The engine is down": nobody waits; the container exits.
	eventually(t, "the second container's shim records its exit and leaves", func() bool {
		_, err := os.Stat(filepath.Join(e.opts.StateDir, exited, "exit.json"))
		return err == nil && len(shimPids(exited)) == 0
	})

	rt := runtime.New(e.opts) // the restarted engine
	e.rt = rt                 // and the cleanup uses it
	ctx := context.Background()
	ids, err := rt.List(ctx)
	if err != nil || !slices.Contains(ids, running) || !slices.Contains(ids, exited) {
		t.Fatalf("List = %v, %v", ids, err)
	}

	s, err := rt.State(ctx, exited)
	if err != nil || s.Running || s.Exit == nil || s.Exit.Code != 5 {
		t.Errorf("State(exited) = %+v, %v; want exit code 5", s, err)
	}
	if st, err := rt.Wait(ctx, exited); err != nil || st.Code != 5 {
		t.Errorf("Wait(exited) = %+v, %v", st, err)
	}

	s, err = rt.State(ctx, running)
	if err != nil || !s.Running || s.Pid != r.pid {
		t.Fatalf("State(running) = %+v, %v; want running with pid %d", s, err, r.pid)
	}
	in, inW := io.Pipe()
	out := waitFor("ping\n")
	done := attach(rt, ctx, running, runtime.Streams{Stdin: in, Stdout: out})
	inW.Write([]byte("ping\n"))
	out.await(t)
	if err := rt.Kill(ctx, running, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := awaitErr(t, done, "Attach"); err != nil {
		t.Errorf("Attach = %v", err)
	}
	inW.Close()
	if st := e.wait(running); st.Code != 137 {
		t.Errorf("exit %d, want 137", st.Code)
	}
	for _, id := range []string{running, exited} {
		if err := rt.Delete(ctx, id); err != nil {
			t.Errorf("Delete(%s): %v", id, err)
		}
	}
	if ids, _ := rt.List(ctx); len(ids) != 0 {
		t.Errorf("List after Delete = %v", ids)
	}
}

// TestEngineKilled runs the engine in another process, SIGKILLs it once
// it started a container, and re-adopts the container from this one.
func TestEngineKilled(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	bundle := t.TempDir()
	writeSpec(t, bundle, e.spec(id, "cat"))
	t.Cleanup(func() { e.remove(id) })
	// The shim outlives its parent, the engine; this process adopts it
	// then (instead of PID 1) so that it can collect it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}

	engine := exec.Command(os.Args[0], "-test.run=^TestHelperEngine$")
	engine.Env = append(os.Environ(),
		"SKIFF_TEST_ENGINE=1", "SKIFF_TEST_STATE="+e.opts.StateDir, "SKIFF_TEST_ENGINE_SHIM="+e.opts.ShimPath,
		"SKIFF_TEST_BUNDLE="+bundle, "SKIFF_TEST_ID="+id)
	out, err := engine.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	engine.Stderr = os.Stderr
	if err := engine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Process.Kill(); engine.Wait() })
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "started pid="); ok {
			pid, _ = strconv.Atoi(n)
			break
		}
	}
	if pid == 0 {
		t.Fatalf("the engine did not start the container (%v)", sc.Err())
	}
	shims := shimPids(id)
	if len(shims) != 1 {
		t.Fatalf("shim pids %v", shims)
	}
	engine.Process.Signal(syscall.SIGKILL)
	engine.Wait()

	ctx := context.Background()
	s, err := e.rt.State(ctx, id)
	if err != nil || !s.Running || s.Pid != pid {
		t.Fatalf("State after the engine died = %+v, %v; want running pid %d", s, err, pid)
	}
	in, inW := io.Pipe()
	defer inW.Close()
	echo := waitFor("still here\n")
	done := attach(e.rt, ctx, id, runtime.Streams{Stdin: in, Stdout: echo})
	inW.Write([]byte("still here\n"))
	echo.await(t)
	if err := e.rt.Kill(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	awaitErr(t, done, "Attach")
	if st := e.wait(id); st.Code != 137 {
		t.Errorf("exit %d, want 137", st.Code)
	}
	// Collect the orphaned shim.
	var ws unix.WaitStatus
	if _, err := unix.Wait4(shims[0], &ws, 0, nil); err != nil {
		t.Errorf("collecting the orphaned shim %d: %v", shims[0], err)
	}
}

// TestHelperEngine is the engine process of TestEngineKilled.
func TestHelperEngine(t *testing.T) {
	if os.Getenv("SKIFF_TEST_ENGINE") == "" {
		t.Skip("the engine process of TestEngineKilled")
	}
	rt := runtime.New(runtime.Options{StateDir: os.Getenv("SKIFF_TEST_STATE"), ShimPath: os.Getenv("SKIFF_TEST_ENGINE_SHIM")})
	bundle := os.Getenv("SKIFF_TEST_BUNDLE")
	pid, err := rt.Start(context.Background(), runtime.StartRequest{
		ID: os.Getenv("SKIFF_TEST_ID"), Bundle: bundle, LogPath: filepath.Join(bundle, "log"), OpenStdin: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("started pid=%d\n", pid)
	select {} // until killed
}
