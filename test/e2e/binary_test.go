package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// TestMultiCall: the binary invoked through a "kubectl" symlink is
// kubectl; `skiff version` names Skiff and the Kubernetes API it serves.
func TestMultiCall(t *testing.T) {
	bin := testenv.Binary(t)
	out, err := exec.Command(filepath.Join(filepath.Dir(bin), "kubectl"), "version", "--client").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Client Version: v1.37.2") {
		t.Fatalf("kubectl symlink: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Skiff test") || !strings.Contains(string(out), "Kubernetes API v1.37.2") {
		t.Fatalf("skiff version: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v\n%s", err, out)
	}
}
