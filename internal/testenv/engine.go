package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// EngineProc is a `skiff engine` running as a child process inside a
// network namespace of the test's own (the "node"), so its bridges, veths
// and nftables rules never touch the host.
type EngineProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	done    chan struct{}
	DataDir string
	RunDir  string
	// NetNS is the node's network namespace (a bind-mounted file).
	NetNS string
	// Socket is the Docker Engine API socket; Host is DOCKER_HOST for it.
	Socket, Host string
	Log          *bytes.Buffer
	dockerConfig string
}

// StartEngine starts `skiff engine` as root in a new network namespace and
// waits until its API answers. At cleanup every container is removed, the
// engine stopped, and the namespace and any leftover shim removed.
func StartEngine(t testing.TB) *EngineProc {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: nsenter (util-linux) is needed to run the engine in its own network namespace")
	}
	dir := t.TempDir()
	e := &EngineProc{
		t:            t,
		DataDir:      filepath.Join(dir, "data"),
		RunDir:       filepath.Join(dir, "run"),
		NetNS:        filepath.Join(dir, "node.netns"),
		dockerConfig: filepath.Join(dir, "docker-config"),
	}
	e.Socket = filepath.Join(e.RunDir, "docker.sock")
	e.Host = "unix://" + e.Socket
	if err := netns.Create(e.NetNS); err != nil {
		t.Fatalf("node network namespace: %v", err)
	}
	t.Cleanup(e.cleanup)
	e.Start()
	return e
}

// Start (re)starts the engine process on the same state.
func (e *EngineProc) Start() {
	t := e.t
	t.Helper()
	e.Log = &bytes.Buffer{}
	e.done = make(chan struct{})
	e.cmd = exec.Command("nsenter", "--net="+e.NetNS, "--", Binary(t), "engine",
		"--data-dir", e.DataDir, "--run-dir", e.RunDir, "--shim", runtimetest.ShimBinary(t))
	e.cmd.Stdout, e.cmd.Stderr = e.Log, e.Log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := e.done
	go func() { e.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", e.Socket); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("engine exited before it was ready:\n%s", e.Log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not ready after 30s:\n%s", e.Log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill SIGKILLs the engine (its containers keep running).
func (e *EngineProc) Kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// Stop ends the engine with SIGTERM.
func (e *EngineProc) Stop() error {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		return nil
	case <-time.After(30 * time.Second):
		e.Kill()
		return fmt.Errorf("engine did not stop within 30s of SIGTERM")
	}
}

// Env is the environment for docker clients of this engine.
func (e *EngineProc) Env() []string {
	return append(os.Environ(), "DOCKER_HOST="+e.Host, "DOCKER_CONFIG="+e.dockerConfig)
}

// Docker runs the docker CLI against the engine and returns its combined
// output.
func (e *EngineProc) Docker(ctx context.Context, stdin string, args ...string) (string, error) {
	return e.command(ctx, stdin, "docker", args...)
}

// Skiff runs a skiff verb against the engine.
func (e *EngineProc) Skiff(ctx context.Context, stdin string, args ...string) (string, error) {
	return e.command(ctx, stdin, Binary(e.t), args...)
}

func (e *EngineProc) command(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.Env()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// InNode runs a command in the node's network namespace (to reach
// published ports and container IPs).
func (e *EngineProc) InNode(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.NetNS, "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *EngineProc) running() bool {
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

func (e *EngineProc) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.t.Failed() {
		e.t.Logf("engine log:\n%s", e.Log)
	}
	if !e.running() {
		e.Start()
	}
	if ids, err := e.Docker(ctx, "", "ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
		if out, err := e.Docker(ctx, "", append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			e.t.Errorf("cleanup: docker rm: %v\n%s", err, out)
		}
	}
	_ = e.Stop()
	// Belt and braces: no shim of this engine may outlive the test.
	_ = exec.Command("pkill", "-KILL", "-f", "skiff-shim shim .*"+regexpQuote(e.RunDir)).Run()
	if err := netns.Delete(e.NetNS); err != nil {
		e.t.Errorf("cleanup: %v", err)
	}
	UnmountUnder(e.t, e.DataDir)
	UnmountUnder(e.t, e.RunDir)
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// UnmountUnder detaches every mount below dir (deepest first).
func UnmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mps[i], syscall.MNT_DETACH); err == nil {
			t.Logf("cleanup: unmounted leftover %s", mps[i])
		}
	}
}
