package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps skiff-proxy small: one runs in every meshed pod, so it
// links no Kubernetes, Istio or etcd packages (nor the CLI framework).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/", "sigs.k8s.io/", "istio.io/", "go.etcd.io/", "github.com/spf13/cobra",
		"google.golang.org/grpc", "skiff.dev/skiff/internal/apiserver", "skiff.dev/skiff/internal/agent",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("skiff-proxy depends on %s", pkg)
			}
		}
	}
}
