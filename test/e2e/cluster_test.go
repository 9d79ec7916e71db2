package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// TestAllInOneCluster runs `skiff server` with its node, as the README's
// first command does, inside a network namespace of the test's own: the
// scheduler binds, the ReplicaSet and Deployment controllers create pods,
// and the node agent runs them as real containers with pod IPs.
func TestAllInOneCluster(t *testing.T) {
	runtimetest.SkipUnlessRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: needs nsenter (util-linux)")
	}
	bin := testenv.Binary(t)
	dir := t.TempDir()
	ns := filepath.Join(dir, "node.netns")
	if err := netns.Create(ns); err != nil {
		t.Fatal(err)
	}
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-KILL", "-f", "skiff-shim shim .*"+run).Run()
		testenv.UnmountUnder(t, dir)
		_ = netns.Delete(ns)
	})

	// The image, imported into the store the node uses.
	rootfs := filepath.Join(dir, "rootfs.tar")
	f, _ := os.Create(rootfs)
	if err := runtimetest.WriteTree(f, runtimetest.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(bin, "import", "--data-dir", data, rootfs, "skiff.local/busybox:1").CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}

	var (
		log    bytes.Buffer
		srv    *exec.Cmd
		exited chan struct{}
	)
	start := func() {
		srv = exec.Command("nsenter", "--net="+ns, "--", bin, "server", "--data-dir", data, "--listen", "127.0.0.1:6443",
			"--registry-listen=", "--run-dir", run, "--shim", runtimetest.ShimBinary(t), "--node-name", "node-1")
		srv.Stdout, srv.Stderr = &log, &log
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		done, cmd := make(chan struct{}), srv
		exited = done
		go func() { cmd.Wait(); close(done) }()
	}
	start()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns, "--", bin, "kubectl", "--kubeconfig", filepath.Join(data, "admin.kubeconfig")}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
			select {
			case <-exited:
				t.Fatalf("server exited while waiting for %s", what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the node to be Ready", func() bool {
		out, _ := kubectl("", "get", "node", "node-1", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
		return out == "True"
	})

	manifest := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: skiff.local/busybox:1
        command: ["sh", "-c", "echo hello-$(hostname) > /index.html && exec httpd -f -p 8080 -h /"]
        readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
`
	if out, err := kubectl(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, err := kubectl("", "rollout", "status", "deployment/web", "--timeout=90s"); err != nil {
		t.Fatalf("rollout status: %v\n%s", err, out)
	}
	out, err := kubectl("", "get", "pods", "-l", "app=web", "-o", "wide")
	if err != nil || strings.Count(out, "Running") != 3 || strings.Count(out, "node-1") != 3 || !strings.Contains(out, "10.244.0.") {
		t.Fatalf("pods:\n%s", out)
	}
	// Pod IPs answer from the node, each with its own hostname (pod name).
	ips, _ := kubectl("", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.podIP}")
	for _, ip := range strings.Fields(ips) {
		page, err := exec.CommandContext(ctx, "nsenter", "--net="+ns, "--", runtimetest.BusyboxPath, "wget", "-qO-", "http://"+ip+":8080/index.html").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(page), "hello-web-") {
			t.Fatalf("GET %s: %v %q", ip, err, page)
		}
	}
	// A deleted pod is replaced.
	first := strings.Fields(strings.TrimSpace(func() string {
		o, _ := kubectl("", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")
		return o
	}()))[0]
	if out, err := kubectl("", "delete", "pod", first); err != nil {
		t.Fatalf("delete pod: %v\n%s", err, out)
	}
	waitFor("the replacement pod", func() bool {
		o, _ := kubectl("", "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}")
		names, _ := kubectl("", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")
		return o == "3" && !strings.Contains(names, first)
	})

	// Kill -9 the whole server (control plane and node) mid-rollout and
	// start it again: the rollout completes, with exactly the replicas of
	// the new template left.
	if out, err := kubectl("", "set", "env", "deployment/web", "VERSION=2"); err != nil {
		t.Fatalf("set env: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	srv.Process.Kill()
	<-exited
	start()
	waitFor("the node after the restart", func() bool {
		out, _ := kubectl("", "get", "node", "node-1", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
		return out == "True"
	})
	if out, err := kubectl("", "rollout", "status", "deployment/web", "--timeout=90s"); err != nil {
		t.Fatalf("rollout status after kill -9: %v\n%s", err, out)
	}
	waitFor("only the new pods", func() bool {
		envs, _ := kubectl("", "get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.containers[0].env[0].value}{' '}{end}")
		return strings.Fields(envs) != nil && strings.Join(strings.Fields(envs), " ") == "2 2 2"
	})

	if out, err := kubectl("", "delete", "deployment", "web", "--wait=true"); err != nil {
		t.Fatalf("delete deployment: %v\n%s", err, out)
	}
	waitFor("the pods to go", func() bool {
		o, _ := kubectl("", "get", "pods", "-o", "name")
		return strings.TrimSpace(o) == ""
	})
}
