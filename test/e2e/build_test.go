package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// TestSkiffBuild builds a FROM scratch image with the CLI, rebuilds it
// from cache, and shows that RUN says plainly what it needs.
func TestSkiffBuild(t *testing.T) {
	bin := testenv.Binary(t)
	data, ctxDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "secret.txt"), []byte("not for the image\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, ".dockerignore"), []byte("secret.txt\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(`FROM scratch
LABEL app=hello
ENV GREETING=hi
WORKDIR /app
COPY *.txt /app/
EXPOSE 8080
USER 65534
ENTRYPOINT ["/app/hello"]
CMD ["--port", "8080"]
`), 0o644)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"build", "--data-dir", data}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("-t", "hello:v1", ctxDir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, want := range []string{"Step 1/9 : FROM scratch", "Step 5/9 : COPY *.txt /app/", "Successfully built", "Successfully tagged docker.io/library/hello:v1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("build output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("-t", "hello:v1", ctxDir)
	if err != nil || strings.Count(out, "Using cache") < 5 {
		t.Fatalf("rebuild not served from cache: %v\n%s", err, out)
	}
	id, err := run("-q", ctxDir)
	if err != nil || !strings.HasPrefix(strings.TrimSpace(id), "sha256:") || strings.Count(strings.TrimSpace(id), "\n") != 0 {
		t.Fatalf("quiet build: %v\n%s", err, id)
	}

	os.WriteFile(filepath.Join(ctxDir, "Dockerfile.run"), []byte("FROM scratch\nRUN echo hi > /x\n"), 0o644)
	out, err = run("-f", filepath.Join(ctxDir, "Dockerfile.run"), ctxDir)
	if err == nil || !strings.Contains(out, "RUN needs the container engine") {
		t.Fatalf("RUN without an engine: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile.bad"), []byte("FROM scratch\nFROBNICATE now\n"), 0o644)
	out, err = run("-f", filepath.Join(ctxDir, "Dockerfile.bad"), ctxDir)
	if err == nil || !strings.Contains(out, "line 2") {
		t.Fatalf("unknown instruction: %v\n%s", err, out)
	}
}
