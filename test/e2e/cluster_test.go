package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// TestAllInOneCluster runs `skiff server` with its node, as the README's
// first command does, inside a network namespace of the test's own: the
// scheduler binds, the ReplicaSet and Deployment controllers create pods,
// and the node agent runs them as real containers with pod IPs.
func TestAllInOneCluster(t *testing.T) {
	c := startCluster(t, nil)
	kubectl, waitFor := c.kubectl, c.waitFor
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

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
		page, err := exec.CommandContext(ctx, "nsenter", "--net="+c.ns, "--", runtimetest.BusyboxPath, "wget", "-qO-", "http://"+ip+":8080/index.html").CombinedOutput()
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
	c.kill9()
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
