package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/testenv"
)

// TestSkiffContainerVerbs drives the engine with Skiff's own verbs (thin
// clients of the Docker Engine API): isolation, limits, networks, volumes
// and restart policies, as a user types them.
func TestSkiffContainerVerbs(t *testing.T) {
	e := testenv.StartEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	skiff := func(args ...string) (string, error) { return e.Skiff(ctx, "", args...) }
	must := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := skiff(args...)
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out, err := e.Docker(ctx, "", "build", "-q", "-t", "bb", busyboxContext(t, "FROM scratch\nADD rootfs.tar /\n", nil)); err != nil {
		t.Skipf("needs docker build to make the base image: %v\n%s", err, out)
	}

	t.Run("isolation", func(t *testing.T) {
		if out := must(t, "run", "--rm", "--hostname", "box", "bb", "hostname"); out != "box\n" {
			t.Errorf("hostname: %q", out)
		}
		if out := must(t, "run", "--rm", "bb", "ps", "-o", "pid,comm"); strings.Join(strings.Fields(out), " ") != "PID COMMAND 1 ps" {
			t.Errorf("ps should see only itself, as PID 1: %q", out)
		}
		if out := must(t, "run", "--rm", "--user", "1234:5678", "bb", "id"); !strings.Contains(out, "uid=1234 gid=5678") {
			t.Errorf("id: %q", out)
		}
		if out := must(t, "run", "--rm", "bb", "cat", "/proc/self/cgroup"); !strings.Contains(out, "/skiff/") {
			t.Errorf("cgroup: %q", out)
		}
		if out := must(t, "run", "--rm", "bb", "ip", "-o", "addr"); !strings.Contains(out, "eth0") || !strings.Contains(out, "172.17.") {
			t.Errorf("ip addr on the default bridge: %q", out)
		}
		if out := must(t, "run", "--rm", "--network", "none", "bb", "ip", "-o", "link"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo:") {
			t.Errorf("--network none: %q", out)
		}
	})

	t.Run("limits and security", func(t *testing.T) {
		out, err := skiff("run", "--name", "oom", "-m", "64m", "bb", "sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo ${#x}`)
		if err == nil {
			t.Fatalf("a 200 MB allocation under -m 64m succeeded: %q", out)
		}
		var st []struct {
			State struct {
				OOMKilled bool
				ExitCode  int
			}
		}
		if err := json.Unmarshal([]byte(must(t, "inspect", "oom")), &st); err != nil || len(st) != 1 || !st[0].State.OOMKilled || st[0].State.ExitCode != 137 {
			t.Errorf("inspect oom: %+v %v", st, err)
		}
		if out, err := skiff("run", "--rm", "--cap-drop=chown", "bb", "sh", "-c", "touch /f; chown 1 /f"); err == nil || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("--cap-drop=chown: %v %q", err, out)
		}
		if out, err := skiff("run", "--rm", "--read-only", "bb", "touch", "/x"); err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("--read-only: %v %q", err, out)
		}
	})

	t.Run("networks", func(t *testing.T) {
		must(t, "network", "create", "--subnet", "10.77.0.0/24", "appnet")
		must(t, "run", "-d", "--name", "web", "--network", "appnet", "bb", "sh", "-c", "echo from-a > /i && httpd -f -p 80 -h /")
		if out := must(t, "run", "--rm", "--network", "appnet", "bb", "wget", "-qO-", "http://web/i"); out != "from-a\n" {
			t.Errorf("by name on a user network: %q", out)
		}
		if out := must(t, "run", "--rm", "--network", "container:web", "bb", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, "10.77.0.") {
			t.Errorf("container:web shares web's IP: %q", out)
		}
		if out := must(t, "network", "ls"); !strings.Contains(out, "appnet") || !strings.Contains(out, "bridge") {
			t.Errorf("network ls: %q", out)
		}
		if out, err := skiff("network", "rm", "appnet"); err == nil {
			t.Errorf("network rm of a network in use succeeded: %q", out)
		}
		must(t, "rm", "-f", "web")
		must(t, "network", "rm", "appnet")
	})

	t.Run("volumes", func(t *testing.T) {
		must(t, "volume", "create", "data")
		must(t, "run", "--rm", "-v", "data:/data", "bb", "sh", "-c", "echo kept > /data/f")
		if out := must(t, "run", "--rm", "-v", "data:/data:ro", "bb", "cat", "/data/f"); out != "kept\n" {
			t.Errorf("volume content: %q", out)
		}
		if out := must(t, "volume", "ls"); !strings.Contains(out, "data") {
			t.Errorf("volume ls: %q", out)
		}
		must(t, "volume", "rm", "data")
	})

	t.Run("restart on-failure:3", func(t *testing.T) {
		must(t, "run", "-d", "--name", "flaky", "--restart", "on-failure:3", "bb", "sh", "-c", "echo run; exit 1")
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st []struct {
				RestartCount int
				State        struct{ Running, Restarting bool }
			}
			json.Unmarshal([]byte(must(t, "inspect", "flaky")), &st)
			if len(st) == 1 && st[0].RestartCount == 3 && !st[0].State.Running && !st[0].State.Restarting {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("restarts: %+v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out := must(t, "logs", "flaky"); strings.Count(out, "run\n") != 4 {
			t.Errorf("logs show %d runs, want 4 (the first and three restarts):\n%s", strings.Count(out, "run\n"), out)
		}
	})

	t.Run("skiff build runs RUN in the engine", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM bb\nRUN echo built-by-run > /msg && mkdir -p /etc && echo app:x:4321:4321::/tmp:/bin/sh >> /etc/passwd\nUSER app\nCMD [\"sh\", \"-c\", \"cat /msg; id -u\"]\n"), 0o644)
		if out := must(t, "build", "-t", "withrun", dir); !strings.Contains(out, "Step 2/4 : RUN") {
			t.Errorf("build progress:\n%s", out)
		}
		if out := must(t, "run", "--rm", "withrun"); out != "built-by-run\n4321\n" {
			t.Errorf("run withrun: %q", out)
		}
		fail := filepath.Join(t.TempDir(), "Dockerfile")
		os.WriteFile(fail, []byte("FROM bb\nRUN echo about to fail; exit 3\n"), 0o644)
		out, err := skiff("build", "-t", "broken", "-f", fail, dir)
		if err == nil || !strings.Contains(out, "about to fail") || !strings.Contains(out, "returned a non-zero code: 3") {
			t.Errorf("failing RUN: %v\n%s", err, out)
		}
		if out, _ := skiff("images"); strings.Contains(out, "broken") {
			t.Errorf("a failed build left an image:\n%s", out)
		}
	})

	t.Run("top stats commit export kill restart start prune", func(t *testing.T) {
		must(t, "run", "-d", "--name", "worker", "bb", "sh", "-c", "echo state > /state; while true; do sleep 1; done")
		if out := must(t, "top", "worker"); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep") && !strings.Contains(out, "sh -c") {
			t.Errorf("top:\n%s", out)
		}
		if out := must(t, "stats", "--no-stream", "worker"); !strings.Contains(out, "worker") || !strings.Contains(out, "MEM USAGE") {
			t.Errorf("stats --no-stream:\n%s", out)
		}
		must(t, "commit", "--author", "tester", "--message", "snapshot", "worker", "worker-snap:1")
		if out := must(t, "run", "--rm", "worker-snap:1", "cat", "/state"); out != "state\n" {
			t.Errorf("a container of the committed image: %q", out)
		}
		if out := must(t, "inspect", "-f", "{{.Author}} {{.Comment}}", "worker-snap:1"); strings.TrimSpace(out) != "tester snapshot" {
			t.Errorf("committed image author/comment: %q", out)
		}
		exported := filepath.Join(t.TempDir(), "worker.tar")
		must(t, "export", "-o", exported, "worker")
		if fi, err := os.Stat(exported); err != nil || fi.Size() < 100000 {
			t.Errorf("export: %v %v", fi, err)
		}
		must(t, "kill", "worker")
		if out := must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "worker"); strings.TrimSpace(out) != "exited 137" {
			t.Errorf("after kill: %q", out)
		}
		must(t, "start", "worker")
		must(t, "restart", "-t", "1", "worker")
		if out := must(t, "inspect", "-f", "{{.State.Running}}", "worker"); strings.TrimSpace(out) != "true" {
			t.Errorf("after start+restart: %q", out)
		}
		must(t, "rm", "-f", "worker")
		must(t, "run", "--name", "done1", "bb", "true")
		if out := must(t, "container", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
			t.Errorf("prune: %q", out)
		}
		if out := must(t, "ps", "-a", "-q", "--filter", "name=done1"); strings.TrimSpace(out) != "" {
			t.Errorf("prune left done1: %q", out)
		}
	})

	t.Run("exec and ps", func(t *testing.T) {
		must(t, "run", "-d", "--name", "sleeper", "bb", "sleep", "300")
		if out := must(t, "exec", "-e", "X=1", "-w", "/tmp", "sleeper", "sh", "-c", "echo $X $(pwd)"); out != "1 /tmp\n" {
			t.Errorf("exec: %q", out)
		}
		if out := must(t, "ps"); !strings.Contains(out, "sleeper") || !strings.Contains(out, "Up ") {
			t.Errorf("ps: %q", out)
		}
		if out := must(t, "ps", "-q"); len(strings.Fields(out)) != 1 {
			t.Errorf("ps -q: %q", out)
		}
		must(t, "stop", "-t", "1", "sleeper")
		must(t, "rm", "sleeper")
	})
}
