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

// TestImageCommands: build, images, tag, inspect, history, save, rmi,
// load — the image verbs a Docker user reaches for, on one local store.
func TestImageCommands(t *testing.T) {
	bin := testenv.Binary(t)
	data, ctxDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("app\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(`FROM scratch
LABEL app=demo
ENV GREETING=hi
WORKDIR /app
COPY app.txt /app/
EXPOSE 8080
USER 65534
ENTRYPOINT ["/app/run"]
CMD ["--port", "8080"]
`), 0o644)
	skiff := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data-dir", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	id := strings.TrimSpace(skiff("build", "-q", "-t", "demo:v1", ctxDir))

	out := skiff("images")
	if !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "demo") || !strings.Contains(out, "v1") || !strings.Contains(out, id[7:19]) {
		t.Fatalf("images:\n%s", out)
	}
	skiff("tag", "demo:v1", "registry.local:5000/team/demo:prod")
	if out := skiff("images"); !strings.Contains(out, "registry.local:5000/team/demo") {
		t.Fatalf("tag not listed:\n%s", out)
	}

	var inspected []struct {
		ID     string `json:"Id"`
		Config struct {
			User         string
			WorkingDir   string
			Env          []string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]struct{}
			Labels       map[string]string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(skiff("image", "inspect", "demo:v1")), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	c := inspected[0].Config
	if inspected[0].ID != id || c.User != "65534" || c.WorkingDir != "/app" || c.Labels["app"] != "demo" ||
		strings.Join(c.Entrypoint, " ") != "/app/run" || strings.Join(c.Cmd, " ") != "--port 8080" ||
		!strings.Contains(strings.Join(c.Env, ","), "GREETING=hi") {
		t.Fatalf("inspect config: %+v", inspected[0])
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("exposed ports: %v", c.ExposedPorts)
	}
	if out := skiff("history", "demo:v1"); !strings.Contains(out, "COPY app.txt /app/") || !strings.Contains(out, "CREATED BY") {
		t.Fatalf("history:\n%s", out)
	}

	archive := filepath.Join(t.TempDir(), "demo.tar")
	skiff("save", "-o", archive, "demo:v1")
	skiff("rmi", "registry.local:5000/team/demo:prod")
	if out := skiff("rmi", "demo:v1"); !strings.Contains(out, "Deleted: "+id) {
		t.Fatalf("rmi of the last name should delete the image:\n%s", out)
	}
	if out := skiff("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after rmi:\n%s", out)
	}
	if out := skiff("load", "-i", archive); !strings.Contains(out, "Loaded image: docker.io/library/demo:v1") {
		t.Fatalf("load:\n%s", out)
	}
	if err := json.Unmarshal([]byte(skiff("image", "inspect", "demo:v1")), &inspected); err != nil || inspected[0].ID != id {
		t.Fatalf("after save/rmi/load the ID is %v (%v), want %s", inspected, err, id)
	}

	// import: a root filesystem tarball becomes a one-layer image.
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", ctxDir, "-cf", rootfs, "app.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	imported := strings.TrimSpace(skiff("import", rootfs, "rootfs:v1"))
	if !strings.HasPrefix(imported, "sha256:") || !strings.Contains(skiff("images"), "rootfs") {
		t.Fatalf("import gave %q", imported)
	}
}
