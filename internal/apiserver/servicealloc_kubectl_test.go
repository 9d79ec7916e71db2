package apiserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// TestKubectlExposeNodePort is the workshop's flow: create a deployment,
// expose it as a NodePort Service, and see its cluster IP and node port.
func TestKubectlExposeNodePort(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t, testenv.WithoutControllers)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("create", "deployment", "hello", "--image=busybox")
	run("expose", "deployment", "hello", "--port", "80", "--type", "NodePort")
	out := run("get", "svc", "hello")
	// NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE
	row := regexp.MustCompile(`(?m)^hello\s+NodePort\s+(10\.\d+\.\d+\.\d+)\s+<none>\s+80:(3\d{4})/TCP\s+`)
	m := row.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kubectl get svc hello:\n%s", out)
	}
	inCIDR(t, "10.96.0.0/12", m[1])
	if got := run("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"); got != "10.96.0.1" {
		t.Errorf("kubernetes service clusterIP %q", got)
	}
	if got := run("get", "ipaddresses", m[1], "-o", "jsonpath={.spec.parentRef.name}"); got != "hello" {
		t.Errorf("kubectl get ipaddress %s: parentRef %q", m[1], got)
	}
}
