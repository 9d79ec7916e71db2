package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps skiff-shim small: it starts for every container and
// lives as long as it.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "-tags", "seccomp runc_nocriu", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/", "sigs.k8s.io/", "go.etcd.io/", "github.com/spf13/cobra",
		"github.com/google/go-containerregistry", "github.com/moby/moby/client",
		"github.com/checkpoint-restore/go-criu", // runc_nocriu
		"net/http",
		"google.golang.org/grpc", "google.golang.org/protobuf",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("skiff-shim depends on %s", pkg)
			}
		}
	}
}
