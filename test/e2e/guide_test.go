package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/guide"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// TestGettingStarted runs docs/getting-started.md: every console block's
// commands, in order, in one shell inside the node's network namespace,
// against `skiff server` and `skiff engine` started as hack/setup.sh starts
// them; each command's output must match what the guide shows.
func TestGettingStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the guide in -short mode")
	}
	for _, tool := range []string{"curl", "bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: the guide needs %s", tool)
		}
	}
	root := repoRoot()
	f, err := os.Open(filepath.Join(root, "docs", "getting-started.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := guide.Parse(f)
	f.Close()
	if err != nil {
		t.Fatalf("docs/getting-started.md: %v", err)
	}

	var clientNS string
	c := startCluster(t, func(c *cluster) {
		clientNS = filepath.Join(c.dir, "client.netns")
		if err := netns.Create(clientNS); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netns.Delete(clientNS) })
		linkNodeAndClient(t, c.ns, clientNS)
	}, "--registry-listen", "127.0.0.1:5000")

	// The tools on PATH, as `make build` leaves them in bin/.
	bin := filepath.Join(c.dir, "bin")
	os.MkdirAll(bin, 0o755)
	for name, target := range map[string]string{"skiff": c.bin, "kubectl": c.bin, "skiff-shim": runtimetest.ShimBinary(t)} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	engineRun := filepath.Join(c.dir, "engine-run")
	engine := exec.Command("nsenter", "--net="+c.ns, "--", c.bin, "engine", "--data-dir", c.data, "--run-dir", engineRun,
		"--shim", runtimetest.ShimBinary(t))
	var engineLog strings.Builder
	engine.Stdout, engine.Stderr = &engineLog, &engineLog
	if err := engine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inNetNS(c.ns, "", "sh", "-c", fmt.Sprintf("DOCKER_HOST=unix://%s/docker.sock %s rm -f $(DOCKER_HOST=unix://%s/docker.sock %s ps -aq) 2>/dev/null", engineRun, c.bin, engineRun, c.bin))
		engine.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { engine.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			engine.Process.Kill()
			<-done
		}
		_ = exec.Command("pkill", "-KILL", "-f", "skiff-shim shim .*"+engineRun).Run()
		if t.Failed() {
			t.Logf("engine log:\n%s", engineLog.String())
		}
	})

	sh := startShell(t, c.ns, root, []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"KUBECONFIG=" + filepath.Join(c.data, "admin.kubeconfig"),
		"SKIFF_DATA_DIR=" + c.data,
		"DOCKER_HOST=unix://" + engineRun + "/docker.sock",
		"HOME=" + c.dir,
		"GOCACHE=" + goEnv("GOCACHE"), "GOMODCACHE=" + goEnv("GOMODCACHE"), "GOFLAGS=" + os.Getenv("GOFLAGS"),
	})
	c.waitFor("the engine", func() bool {
		out, err := sh.run("skiff version >/dev/null && curl -sf --unix-socket " + engineRun + "/docker.sock http://d/_ping")
		return err == nil && out == "OK"
	})

	for _, step := range steps {
		if step.Skip {
			continue
		}
		deadline := time.Now().Add(step.Retry)
		for {
			failure := runStep(sh, step)
			if failure == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("docs/getting-started.md:%d: %s", step.Line, failure)
			}
			time.Sleep(time.Second)
		}
	}
}

// runStep runs a block's commands and describes the first mismatch.
func runStep(sh *shell, step guide.Step) string {
	for _, cmd := range step.Commands {
		out, err := sh.run(cmd.Text)
		if len(cmd.Expect) == 0 && err != nil {
			return fmt.Sprintf("$ %s\n%s\n(%v)", cmd.Text, out, err)
		}
		if merr := guide.Match(cmd.Expect, out); merr != nil {
			return fmt.Sprintf("$ %s\n%s\n%v (command: %v)", cmd.Text, out, merr, err)
		}
	}
	return ""
}

// shell is one bash in the node's namespace that runs commands in turn,
// so that variables and background jobs carry from one to the next.
type shell struct {
	in  io.Writer
	out *bufio.Reader
}

const doneMarker = "__GUIDE_DONE__"

func startShell(t *testing.T, ns, dir string, env []string) *shell {
	cmd := exec.Command("nsenter", "--net="+ns, "--", "bash", "--noprofile", "--norc")
	cmd.Dir, cmd.Env = dir, env
	in, _ := cmd.StdinPipe()
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		pr.Close()
	})
	return &shell{in: in, out: bufio.NewReader(pr)}
}

// run runs one command and returns its output (stdout and stderr) and
// an error for a non-zero exit.
func (s *shell) run(command string) (string, error) {
	fmt.Fprintf(s.in, "%s\necho; echo %s $?\n", command, doneMarker)
	var b strings.Builder
	for {
		line, err := s.out.ReadString('\n')
		if err != nil {
			return b.String(), fmt.Errorf("shell ended: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, doneMarker+" "); ok {
			out := strings.TrimSuffix(b.String(), "\n")
			if code := strings.TrimSpace(rest); code != "0" {
				return out, fmt.Errorf("exit status %s", code)
			}
			return out, nil
		}
		b.WriteString(line)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func goEnv(key string) string {
	out, _ := exec.Command("go", "env", key).Output()
	return strings.TrimSpace(string(out))
}
