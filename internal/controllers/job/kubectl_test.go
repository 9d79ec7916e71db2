package job_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// TestKubectl runs a Job the way a user does, with the embedded kubectl:
// apply, wait for completion, and see the controller's events in
// describe.
func TestKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	cl := startCluster(t)
	ns := cl.namespace(t, "cli")
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, append([]string{"-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cl.env.Kubeconfig)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(`apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  completions: 2
  parallelism: 2
  template:
    metadata:
      annotations:
        fake.skiff.dev/phase: Succeeded
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: busybox
        command: ["true"]
`, "apply", "-f", "-")
	run("", "wait", "--for=condition=complete", "--timeout=60s", "job/pi")
	describe := run("", "describe", "job", "pi")
	words := strings.Join(strings.Fields(describe), " ")
	for _, want := range []string{"Pods Statuses: 0 Active (0 Ready) / 2 Succeeded / 0 Failed", "SuccessfulCreate", "Created pod: pi-", "Completed", "Job completed"} {
		if !strings.Contains(words, want) {
			t.Errorf("kubectl describe job lacks %q:\n%s", want, describe)
		}
	}
	if get := run("", "get", "job", "pi"); !strings.Contains(get, "2/2") {
		t.Errorf("kubectl get job does not show 2/2 completions:\n%s", get)
	}
}
