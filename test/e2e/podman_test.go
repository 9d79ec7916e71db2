package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// TestPodmanInterop: an image Skiff saves loads into podman with the same
// image ID, and an image podman saves loads into Skiff with the same ID.
func TestPodmanInterop(t *testing.T) {
	podmanBin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("skipping: podman is not installed (make test installs Debian's podman when run as root)")
	}
	bin := testenv.Binary(t)
	data, ctxDir, pm := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "f"), []byte("interop\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY f /f\nLABEL via=skiff\nCMD [\"/f\"]\n"), 0o644)
	skiff := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data-dir", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	podman := func(args ...string) string {
		t.Helper()
		base := []string{"--root", filepath.Join(pm, "root"), "--runroot", filepath.Join(pm, "run"), "--storage-driver", "vfs"}
		out, err := exec.Command(podmanBin, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	id := strings.TrimSpace(skiff("build", "-q", "-t", "interop:v1", ctxDir))
	fromSkiff := filepath.Join(t.TempDir(), "skiff.tar")
	skiff("save", "-o", fromSkiff, "interop:v1")
	podman("load", "-i", fromSkiff)
	if out := podman("inspect", "--format", "{{.Id}}", "localhost/interop:v1"); strings.TrimSpace(out) != strings.TrimPrefix(id, "sha256:") {
		t.Fatalf("podman sees ID %q, skiff built %s", out, id)
	}

	fromPodman := filepath.Join(t.TempDir(), "podman.tar")
	podman("tag", "localhost/interop:v1", "localhost/interop:again")
	podman("save", "-o", fromPodman, "localhost/interop:again")
	skiff("rmi", "interop:v1")
	if out := skiff("load", "-i", fromPodman); !strings.Contains(out, "Loaded image: localhost/interop:again") {
		t.Fatalf("skiff load of podman's archive:\n%s", out)
	}
	var got []struct {
		ID     string `json:"Id"`
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(skiff("image", "inspect", "localhost/interop:again")), &got); err != nil || got[0].ID != id || got[0].Config.Labels["via"] != "skiff" {
		t.Fatalf("after the round trip through podman: %+v %v, want ID %s", got, err, id)
	}
}
