package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/version"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the skiff binary once per test process, with the same
// link flags as the Makefile, and returns its path. A "kubectl" symlink
// and the skiff-proxy sidecar binary sit beside it.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := runtimetest.BinDir("skiff-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "skiff")
		cmd := exec.Command("go", "build", "-ldflags", version.LDFlags("test"), "-o", binPath, "skiff.dev/skiff/cmd/skiff")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		// The mesh's sidecar binary, beside skiff as `make build` leaves
		// it (every node imports it as its builtin sidecar image).
		proxy := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "skiff-proxy"), "skiff.dev/skiff/cmd/skiff-proxy")
		proxy.Dir, proxy.Env = moduleRoot(), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := proxy.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build skiff-proxy: %v\n%s", err, out)
			return
		}
		buildErr = os.Symlink("skiff", filepath.Join(dir, "kubectl"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Proc is a `skiff server` running as a child process.
type Proc struct {
	t          testing.TB
	cmd        *exec.Cmd
	DataDir    string
	Addr       string
	Kubeconfig string
	Log        *bytes.Buffer
	done       chan struct{}
}

// FreePort returns a loopback address with a port nobody listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartProcess runs `skiff server` on dataDir and addr and waits until
// /readyz answers. The process is killed at cleanup if still running.
func StartProcess(t testing.TB, dataDir, addr string, extra ...string) *Proc {
	t.Helper()
	// No plain-HTTP registry unless a test asks for one: it would want
	// the same default port in every server.
	args := append([]string{"server", "--data-dir", dataDir, "--listen", addr, "--registry-listen=", "--disable-agent"}, extra...)
	p := &Proc{t: t, DataDir: dataDir, Addr: addr, Log: &bytes.Buffer{}, done: make(chan struct{}),
		Kubeconfig: filepath.Join(dataDir, "admin.kubeconfig")}
	p.cmd = exec.Command(Binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.Log, p.Log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", p.Log.String())
		}
	})
	if err := WaitReady(addr, 60*time.Second, p.done); err != nil {
		t.Fatalf("server on %s: %v\n%s", addr, err, p.Log.String())
	}
	return p
}

// WaitReady polls https://addr/readyz until it answers 200.
func WaitReady(addr string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("server exited before it was ready")
		default:
		}
		resp, err := client.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", timeout)
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return fmt.Errorf("server did not stop within 30s of SIGTERM")
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("server exited with %v", st)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// Kubectl runs the embedded kubectl against the process's cluster and
// returns its combined output.
func (p *Proc) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, Binary(p.t), append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+p.Kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StartEtcd runs `skiff etcd` (a standalone embedded etcd member) as a
// child process serving clients on http://addr, and returns that URL once
// the member reports healthy.
func StartEtcd(t testing.TB, dataDir, addr string) string {
	t.Helper()
	url := "http://" + addr
	cmd := exec.Command(Binary(t), "etcd", "--data-dir", dataDir, "--listen-client-urls", url)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("skiff etcd exited:\n%s", log.String())
		default:
		}
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("skiff etcd not healthy after 30s:\n%s", log.String())
	return ""
}
