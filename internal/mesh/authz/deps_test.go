package authz

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoIstioOrKubernetesDeps keeps the sidecar's authorization free of
// Istio and Kubernetes packages: the sidecar binary links it.
func TestNoIstioOrKubernetesDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", "skiff.dev/skiff/internal/mesh/authz").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"istio.io/", "k8s.io/", "sigs.k8s.io/", "skiff.dev/skiff/internal/mesh/authz/fromistio"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("internal/mesh/authz depends on %s", dep)
			}
		}
	}
}
