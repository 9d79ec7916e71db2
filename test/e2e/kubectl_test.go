// Package e2e drives the built skiff binary as a user would: the real
// kubectl (embedded), client-go, and the server as a child process.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/testenv"
)

const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/hello:v1.0
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
type: Opaque
stringData:
  password: s3cret
`

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kube runs kubectl and fails the test on error.
type kube struct {
	t *testing.T
	p *testenv.Proc
}

func (k kube) run(stdin string, args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := k.p.Kubectl(ctx, stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (k kube) fails(args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := k.p.Kubectl(ctx, "", args...)
	if err == nil {
		k.t.Fatalf("kubectl %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestKubectlWorkflow(t *testing.T) {
	p := testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t))
	kubectlWorkflow(t, p)

	// Deleting the namespace deletes everything in it, then the namespace.
	k := kube{t, p}
	contains(t, k.run("", "delete", "namespace", "demo", "--timeout=60s"), `namespace "demo" deleted`)
	out := k.fails("get", "namespace", "demo")
	contains(t, out, "NotFound")
	if err := p.Stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// TestExternalEtcd runs the same workflow on a server whose state lives
// in a separately started etcd, then shows the state is the etcd's: a
// server with a fresh data dir on the same etcd sees every object.
func TestExternalEtcd(t *testing.T) {
	etcd := testenv.StartEtcd(t, t.TempDir(), testenv.FreePort(t))
	p := testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t), "--etcd-endpoints", etcd)
	kubectlWorkflow(t, p)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p2 := testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t), "--etcd-endpoints", etcd)
	out := kube{t, p2}.run("", "get", "cm,svc,deploy", "-n", "demo")
	contains(t, out, "configmap/web-config", "service/web")
}

func kubectlWorkflow(t *testing.T, p *testenv.Proc) {
	k := kube{t, p}

	contains(t, k.run("", "version"), "Client Version: v1.37.2", "Server Version: v1.37.2+skiff")
	contains(t, k.run("", "create", "namespace", "demo"), "namespace/demo created")

	out := k.run(manifest, "apply", "-n", "demo", "-f", "-")
	contains(t, out, "deployment.apps/web created", "service/web created", "configmap/web-config created", "secret/web-secret created")

	t.Run("get formats", func(t *testing.T) {
		contains(t, k.run("", "get", "deploy", "web", "-n", "demo", "-o", "yaml"),
			"kind: Deployment", "replicas: 2", "kubectl.kubernetes.io/last-applied-configuration", "maxSurge: 25%", "progressDeadlineSeconds: 600")
		var obj map[string]any
		if err := json.Unmarshal([]byte(k.run("", "get", "svc", "web", "-n", "demo", "-o", "json")), &obj); err != nil {
			t.Fatalf("-o json is not JSON: %v", err)
		}
		if obj["kind"] != "Service" {
			t.Fatalf("kind = %v", obj["kind"])
		}
		contains(t, k.run("", "get", "deploy", "-n", "demo", "-o", "wide"), "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "CONTAINERS", "IMAGES", "SELECTOR", "registry.local/hello:v1.0", "app=web")
		out := k.run("", "get", "cm,svc,deploy", "-n", "demo", "-l", "app=web")
		contains(t, out, "configmap/web-config", "service/web", "deployment.apps/web")
		out = k.run("", "get", "cm", "-n", "demo", "--field-selector", "metadata.name=web-config")
		contains(t, out, "web-config")
		if strings.Contains(out, "kube-root-ca") {
			t.Fatalf("field selector did not filter:\n%s", out)
		}
	})

	t.Run("label annotate patch", func(t *testing.T) {
		contains(t, k.run("", "label", "cm", "web-config", "-n", "demo", "env=test"), "configmap/web-config labeled")
		contains(t, k.run("", "annotate", "cm", "web-config", "-n", "demo", "owner=team-a"), "configmap/web-config annotated")
		contains(t, k.run("", "get", "cm", "-n", "demo", "-l", "env=test"), "web-config")
		k.run("", "patch", "cm", "web-config", "-n", "demo", "--type=json", "-p", `[{"op":"add","path":"/data/json","value":"1"}]`)
		k.run("", "patch", "cm", "web-config", "-n", "demo", "--type=merge", "-p", `{"data":{"merge":"2"}}`)
		k.run("", "patch", "deploy", "web", "-n", "demo", "--type=strategic", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.local/hello:v1.1"}]}}}}`)
		contains(t, k.run("", "get", "cm", "web-config", "-n", "demo", "-o", "jsonpath={.data}"), `"json":"1"`, `"merge":"2"`, `"greeting":"hello"`)
		out := k.run("", "get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.metadata.generation}")
		if out != "registry.local/hello:v1.1 8080 2" {
			t.Fatalf("after strategic patch: %q, want image v1.1, port kept, generation 2", out)
		}
	})

	t.Run("reapply", func(t *testing.T) {
		changed := strings.Replace(manifest, "replicas: 2", "replicas: 3", 1)
		out := k.run(changed, "apply", "-n", "demo", "-f", "-")
		contains(t, out, "deployment.apps/web configured", "configmap/web-config unchanged")
		if got := k.run("", "get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}"); got != "3" {
			t.Fatalf("replicas after re-apply = %q, want 3", got)
		}
		// Labels added by `kubectl label` survive a re-apply that does not
		// mention them, as client-side apply's three-way merge promises.
		contains(t, k.run("", "get", "cm", "web-config", "-n", "demo", "--show-labels"), "env=test")
	})

	t.Run("cascading delete", func(t *testing.T) {
		for _, mode := range []string{"background", "foreground", "orphan"} {
			owner := "owner-" + mode
			k.run("", "create", "configmap", owner, "-n", "demo")
			uid := k.run("", "get", "configmap", owner, "-n", "demo", "-o", "jsonpath={.metadata.uid}")
			k.run(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: child-%s
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: %s, uid: %s, blockOwnerDeletion: true}
`, mode, owner, uid), "apply", "-n", "demo", "-f", "-")
			contains(t, k.run("", "delete", "configmap", owner, "-n", "demo", "--cascade="+mode), `configmap "`+owner+`" deleted`)
			child := "child-" + mode
			if mode == "orphan" {
				eventually(t, func() bool {
					out, _ := p.Kubectl(context.Background(), "", "get", "configmap", child, "-n", "demo", "-o", "jsonpath={.metadata.ownerReferences}")
					return out == ""
				}, "orphaned child keeps no owner reference")
				k.run("", "get", "configmap", child, "-n", "demo")
				continue
			}
			eventually(t, func() bool {
				out, err := p.Kubectl(context.Background(), "", "get", "configmap", child, "-n", "demo")
				return err != nil && strings.Contains(out, "NotFound")
			}, mode+" deletion removes the child")
		}
	})

	t.Run("validation", func(t *testing.T) {
		ctx := context.Background()
		typo := strings.Replace(manifest, "replicas: 2", "replicaz: 2", 1)
		out, err := p.Kubectl(ctx, typo, "apply", "-n", "demo", "-f", "-")
		if err == nil {
			t.Fatalf("apply with an unknown field succeeded:\n%s", out)
		}
		contains(t, out, `unknown field "spec.replicaz"`)
		out, err = p.Kubectl(ctx, "", "create", "configmap", "Bad_Name", "-n", "demo")
		if err == nil {
			t.Fatalf("invalid name accepted:\n%s", out)
		}
		contains(t, out, `ConfigMap "Bad_Name" is invalid: metadata.name`)
	})

	t.Run("explain", func(t *testing.T) {
		contains(t, k.run("", "explain", "deployment.spec.strategy"), "rollingUpdate", "type")
	})

	t.Run("server-side apply", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := p.Kubectl(ctx, manifest, "apply", "--server-side", "-n", "demo", "-f", "-")
		if err == nil {
			t.Fatalf("server-side apply succeeded; Skiff does not implement it yet, so it must say so:\n%s", out)
		}
		contains(t, out, "server-side apply is not supported by Skiff yet")
	})

	t.Run("watch streams updates", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, testenv.Binary(t), "kubectl", "get", "cm", "web-config", "-n", "demo", "-w", "-o", "jsonpath={.data.greeting}{\"\\n\"}")
		cmd.Env = append(cmd.Environ(), "KUBECONFIG="+p.Kubeconfig)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		lines := make(chan string, 10)
		go func() {
			buf := make([]byte, 4096)
			var acc string
			for {
				n, err := stdout.Read(buf)
				acc += string(buf[:n])
				for strings.Contains(acc, "\n") {
					i := strings.Index(acc, "\n")
					lines <- acc[:i]
					acc = acc[i+1:]
				}
				if err != nil {
					close(lines)
					return
				}
			}
		}()
		next := func() string {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("watch ended")
				}
				return l
			case <-ctx.Done():
				t.Fatal("no watch output")
			}
			return ""
		}
		if l := next(); l != "hello" {
			t.Fatalf("first line %q, want hello", l)
		}
		k.run("", "patch", "cm", "web-config", "-n", "demo", "--type=merge", "-p", `{"data":{"greeting":"bonjour"}}`)
		if l := next(); l != "bonjour" {
			t.Fatalf("streamed line %q, want bonjour", l)
		}
	})
}
