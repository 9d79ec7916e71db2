package runtime_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEngineDoesNotLinkLibcontainer: the engine talks to shims; only
// skiff-shim links libcontainer (and needs cgo for it).
func TestEngineDoesNotLinkLibcontainer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "skiff.dev/skiff/internal/runtime").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/opencontainers/runc") || strings.HasPrefix(pkg, "skiff.dev/skiff/internal/runtime/shim") && pkg != "skiff.dev/skiff/internal/runtime/shim/wire" {
			t.Errorf("package runtime depends on %s", pkg)
		}
	}
}
