package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// busyboxContext writes a build context whose Dockerfile makes a busybox
// image FROM scratch (a rootfs tarball ADDed and auto-extracted), plus
// extra files.
func busyboxContext(t *testing.T, dockerfile string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "rootfs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, f, runtimetest.BusyboxRootfs(t))
	f.Close()
	files := map[string]string{"Dockerfile": dockerfile}
	for k, v := range extra {
		files[k] = v
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeTree(t *testing.T, w io.Writer, root string) {
	if err := runtimetest.WriteTree(w, root); err != nil {
		t.Fatal(err)
	}
}

const httpdDockerfile = `FROM scratch
ADD rootfs.tar /
RUN mkdir -p /www && echo hello-from-skiff > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
`

func requireDocker(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipping: the docker CLI is not installed (make test-tools installs docker.io)")
	}
}

// TestDockerCLI is the container engine's first acceptance: the real
// docker CLI builds an image (with a RUN step), runs it with a published
// port, and uses ps, logs, exec -it, stop, rm and images against Skiff.
func TestDockerCLI(t *testing.T) {
	requireDocker(t)
	e := testenv.StartEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	docker := func(args ...string) string {
		t.Helper()
		out, err := e.Docker(ctx, "", args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	out := docker("version")
	if !strings.Contains(out, "Server:") || !strings.Contains(out, "API version") {
		t.Fatalf("docker version:\n%s", out)
	}
	out = docker("build", "-t", "web-image", busyboxContext(t, httpdDockerfile, nil))
	if !strings.Contains(out, "Successfully built") && !strings.Contains(out, "sha256:") {
		t.Fatalf("docker build:\n%s", out)
	}
	if out := docker("images"); !strings.Contains(out, "web-image") {
		t.Fatalf("docker images:\n%s", out)
	}

	id := strings.TrimSpace(docker("run", "-d", "-p", "8080:80", "--name", "web", "web-image"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("docker run -d printed %q", id)
	}
	var page string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if page, _ = e.InNode(ctx, runtimetest.BusyboxPath, "wget", "-qO-", "http://127.0.0.1:8080/"); page == "hello-from-skiff\n" {
			break
		}
	}
	if page != "hello-from-skiff\n" {
		t.Fatalf("GET http://127.0.0.1:8080/ = %q", page)
	}
	if out := docker("ps"); !strings.Contains(out, "web") || !strings.Contains(out, "0.0.0.0:8080->80/tcp") || !strings.Contains(out, "Up ") {
		t.Fatalf("docker ps:\n%s", out)
	}
	if out := docker("logs", "web"); !strings.Contains(out, "response:200") {
		t.Fatalf("docker logs web:\n%s", out)
	}
	// exec -it needs a terminal on the client side: script(1) gives it one.
	cmd := exec.CommandContext(ctx, "script", "-qec", "docker exec -it web sh -c 'ps aux'", "/dev/null")
	cmd.Env = e.Env()
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec -it: %v\n%s", err, raw)
	}
	// The terminal may add carriage returns and NULs around the output,
	// and echo a NUL of its own in caret notation ("^@").
	ps := strings.NewReplacer("\r", "", "\x00", "", "^@", "").Replace(string(raw))
	if !regexp.MustCompile(`(?m)^\s*1\s+\S+\s+.*httpd`).MatchString(ps) || strings.Count(strings.TrimSpace(ps), "\n") > 3 {
		t.Fatalf("ps aux in the container should show its own PID namespace (httpd as PID 1, nothing of the host):\n%s", ps)
	}
	docker("stop", "-t", "1", "web") // httpd as PID 1 ignores SIGTERM
	if out := docker("ps", "-a", "--filter", "name=web"); !strings.Contains(out, "Exited") {
		t.Fatalf("after stop:\n%s", out)
	}
	docker("rm", "web")
	if out := docker("ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("after rm: %q", out)
	}
	if out, err := e.InNode(ctx, runtimetest.BusyboxPath, "wget", "-qO-", "-T", "1", "http://127.0.0.1:8080/"); err == nil {
		t.Fatalf("port 8080 still answers after rm: %q", out)
	}
}

// TestDockerCLIBadInput: each bad request is a clear error and leaves no
// container, network namespace or mount behind.
func TestDockerCLIBadInput(t *testing.T) {
	requireDocker(t)
	e := testenv.StartEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := e.Docker(ctx, "", "build", "-q", "-t", "bb", busyboxContext(t, "FROM scratch\nADD rootfs.tar /\n", nil)); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if out, err := e.Docker(ctx, "", "run", "-d", "--name", "taken", "bb", "sleep", "60"); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown image", []string{"run", "--pull=never", "nosuch:image"}, "No such image"},
		{"bad port", []string{"run", "-p", "99999:80", "bb", "true"}, "invalid"},
		{"bad volume", []string{"run", "-v", "data:relative/path", "bb", "true"}, "invalid"},
		{"bad restart policy", []string{"run", "--restart=sometimes", "bb", "true"}, "restart"},
		{"name clash", []string{"run", "--name", "taken", "bb", "true"}, "already in use"},
		{"port clash", []string{"run", "-d", "-p", "8081:80", "bb", "sleep", "60"}, ""},
		{"port clash 2", []string{"run", "-d", "-p", "8081:80", "bb", "sleep", "60"}, "8081"},
	}
	for _, c := range cases {
		out, err := e.Docker(ctx, "", c.args...)
		if c.want == "" {
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.name, err, out)
			}
			continue
		}
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: err %v, output %q; want an error mentioning %q", c.name, err, out, c.want)
		}
	}
	// Only "taken", the first port-clash container and the one whose start
	// failed (created, never running) exist; nothing else is left behind.
	out, _ := e.Docker(ctx, "", "ps", "-a", "--format", "{{.Names}} {{.State}}")
	if n := len(strings.Fields(out)); n != 6 {
		t.Errorf("containers after bad input:\n%s", out)
	}
	entries, _ := os.ReadDir(filepath.Join(e.RunDir, "netns"))
	if len(entries) != 2 {
		t.Errorf("network namespaces after bad input: %d, want 2 (the running containers')", len(entries))
	}
	// In the node: lo, the bridge and one veth per running container; the
	// nftables rules of the failed start are gone (one DNAT for 8081 left).
	links, _ := e.InNode(ctx, "ip", "-o", "link", "show")
	if n := strings.Count(links, "\n"); n != 4 || !strings.Contains(links, "skiff0") {
		t.Errorf("links after bad input:\n%s", links)
	}
	rules, _ := e.InNode(ctx, "nft", "list", "table", "ip", "skiff")
	if n := strings.Count(rules, "dport 8081"); n == 0 || n > 2 {
		t.Errorf("nftables after a failed port-clash start:\n%s", rules)
	}
	// cgroups: only the two running containers have one.
	ids, _ := e.Docker(ctx, "", "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		state, _ := e.Docker(ctx, "", "inspect", "-f", "{{.State.Running}}", id)
		if running := strings.TrimSpace(state) == "true"; running != hasCgroup(id) {
			t.Errorf("container %s running=%v but its cgroup exists=%v", id[:12], running, !running)
		}
	}
}

// TestEngineKilled: SIGKILL the engine; its containers keep running, and
// after a restart ps, logs -f and stop work on them, and a container with
// --restart=always that died meanwhile is started again.
func TestEngineKilled(t *testing.T) {
	requireDocker(t)
	e := testenv.StartEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := e.Docker(ctx, "", "build", "-q", "-t", "bb", busyboxContext(t, "FROM scratch\nADD rootfs.tar /\n", nil)); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ticker := `i=0; trap 'echo stopping; exit 0' TERM; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done`
	if out, err := e.Docker(ctx, "", "run", "-d", "--name", "ticker", "bb", "sh", "-c", ticker); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	e.Kill()
	time.Sleep(500 * time.Millisecond)
	e.Start()
	out, err := e.Docker(ctx, "", "ps")
	if err != nil || !strings.Contains(out, "ticker") || !strings.Contains(out, "Up ") {
		t.Fatalf("ps after engine restart: %v\n%s", err, out)
	}
	logs := exec.CommandContext(ctx, "docker", "logs", "-f", "ticker")
	logs.Env = e.Env()
	stdout, _ := logs.StdoutPipe()
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := e.Docker(ctx, "", "stop", "ticker"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	followed, _ := io.ReadAll(stdout)
	if err := logs.Wait(); err != nil {
		t.Fatalf("logs -f: %v", err)
	}
	if !strings.Contains(string(followed), "tick 0") || !strings.HasSuffix(string(followed), "stopping\n") {
		t.Fatalf("logs -f should run from the start to the stop:\n%s", followed)
	}
}

// hasCgroup reports whether container id has a cgroup (v1 memory
// controller, or cgroup v2 unified or hybrid).
func hasCgroup(id string) bool {
	for _, root := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "skiff", id)); err == nil {
			return true
		}
	}
	return false
}
