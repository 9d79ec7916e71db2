package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is `skiff server` with its node, as the README's first command
// runs it, inside a network namespace of the test's own (the "node").
type cluster struct {
	t    *testing.T
	bin  string
	dir  string
	ns   string // the node's network namespace
	data string
	args []string // extra server flags

	mu     sync.Mutex
	log    bytes.Buffer
	srv    *exec.Cmd
	exited chan struct{}
}

// startCluster imports the busybox image as skiff.local/busybox:1 and
// starts the server with node "node-1"; setup, if not nil, runs once the
// node's namespace exists and before the server starts (to plumb links).
func startCluster(t *testing.T, setup func(c *cluster), args ...string) *cluster {
	runtimetest.SkipUnlessRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: needs nsenter (util-linux)")
	}
	c := &cluster{t: t, bin: testenv.Binary(t), dir: t.TempDir(), args: args}
	c.ns, c.data = filepath.Join(c.dir, "node.netns"), filepath.Join(c.dir, "data")
	if err := netns.Create(c.ns); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(c.dir, "run")
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-KILL", "-f", "skiff-shim shim .*"+run).Run()
		testenv.UnmountUnder(t, c.dir)
		_ = netns.Delete(c.ns)
	})
	rootfs := filepath.Join(c.dir, "rootfs.tar")
	f, _ := os.Create(rootfs)
	if err := runtimetest.WriteTree(f, runtimetest.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(c.bin, "import", "--data-dir", c.data, rootfs, "skiff.local/busybox:1").CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if setup != nil {
		setup(c)
	}
	c.start()
	t.Cleanup(func() {
		c.mu.Lock()
		srv, exited := c.srv, c.exited
		c.mu.Unlock()
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", c.log.String())
		}
	})
	c.waitFor("the node to be Ready", func() bool {
		out, _ := c.kubectl("", "get", "node", "node-1", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
		return out == "True"
	})
	return c
}

func (c *cluster) start() {
	args := append([]string{"--net=" + c.ns, "--", c.bin, "server", "--data-dir", c.data, "--listen", "127.0.0.1:6443",
		"--registry-listen=", "--run-dir", filepath.Join(c.dir, "run"), "--shim", runtimetest.ShimBinary(c.t), "--node-name", "node-1"}, c.args...)
	srv := exec.Command("nsenter", args...)
	srv.Stdout, srv.Stderr = &c.log, &c.log
	if err := srv.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	c.mu.Lock()
	c.srv, c.exited = srv, done
	c.mu.Unlock()
}

// kill9 kills the whole server (control plane and node) and starts it again.
func (c *cluster) kill9() {
	c.srv.Process.Kill()
	<-c.exited
	c.start()
	c.waitFor("the node after the restart", func() bool {
		out, _ := c.kubectl("", "get", "node", "node-1", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
		return out == "True"
	})
}

// kubectl runs the real kubectl in the node's namespace.
func (c *cluster) kubectl(stdin string, args ...string) (string, error) {
	return c.inNode(stdin, append([]string{c.bin, "kubectl", "--kubeconfig", filepath.Join(c.data, "admin.kubeconfig")}, args...)...)
}

// mustKubectl is kubectl that fails the test on error.
func (c *cluster) mustKubectl(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.kubectl(stdin, args...)
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// inNode runs a command in the node's network namespace.
func (c *cluster) inNode(stdin string, args ...string) (string, error) {
	return inNetNS(c.ns, stdin, args...)
}

func inNetNS(ns, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns, "--"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitFor polls ok for up to 90 s, failing early if the server exits.
func (c *cluster) waitFor(what string, ok func() bool) {
	c.t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
		c.mu.Lock()
		exited := c.exited
		c.mu.Unlock()
		select {
		case <-exited:
			c.t.Fatalf("server exited while waiting for %s", what)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}
