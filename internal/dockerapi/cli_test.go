package dockerapi_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestDockerCLI drives the real docker CLI against the server (over the
// fake backend) on a unix socket.
func TestDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not in PATH: skipping the real-client test")
	}
	ts := startServer(t, nil)
	cfgDir := t.TempDir()
	docker := func(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, dockerBin, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+ts.Socket, "DOCKER_CONFIG="+cfgDir,
			"DOCKER_CONTEXT=", "DOCKER_API_VERSION=", "DOCKER_BUILDKIT=", "DOCKER_CLI_HINTS=false")
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("docker %v timed out; stdout %q stderr %q", args, o.String(), e.String())
		}
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}
	mustDocker := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := docker(t, stdin, args...)
		if code != 0 {
			t.Fatalf("docker %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
		return out
	}

	t.Run("version", func(t *testing.T) {
		out := mustDocker(t, "", "version")
		for _, want := range []string{"Server: Skiff Engine", "Version:          0.1.0-test", "API version:      1.56 (minimum version 1.24)"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("run --rm prints the output", func(t *testing.T) {
		if out := mustDocker(t, "", "run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
			t.Errorf("output %q, want \"hi\\n\"", out)
		}
		res, err := ts.Client.ContainerList(testContext(t), client.ContainerListOptions{All: true})
		if err != nil || len(res.Items) != 0 {
			t.Errorf("after --rm: %d containers, %v", len(res.Items), err)
		}
	})
	t.Run("run passes the exit code and stdin", func(t *testing.T) {
		out, errOut, code := docker(t, "", "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("got %q %q exit %d", out, errOut, code)
		}
		if out := mustDocker(t, "piped\n", "run", "-i", "--rm", "busybox", "cat"); out != "piped\n" {
			t.Errorf("cat echoed %q", out)
		}
	})
	t.Run("ps and logs", func(t *testing.T) {
		mustDocker(t, "", "run", "--name", "logged", "-e", "A=1", "-l", "app=x", "-p", "8080:80", "-v", "data:/data",
			"--restart", "on-failure:2", "-m", "64m", "--cpus", "0.5", "busybox", "sh", "-c", "echo out; echo err >&2")
		out, errOut, code := docker(t, "", "logs", "logged")
		if out != "out\n" || errOut != "err\n" || code != 0 {
			t.Errorf("logs %q %q exit %d", out, errOut, code)
		}
		ps := mustDocker(t, "", "ps", "-a")
		if !regexp.MustCompile(`(?m)^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`).MatchString(ps) ||
			!regexp.MustCompile(`Exited \(0\) .* logged`).MatchString(ps) {
			t.Errorf("ps -a:\n%s", ps)
		}
	})
	t.Run("exec", func(t *testing.T) {
		mustDocker(t, "", "run", "-d", "--name", "daemon", "busybox", "sleep", "infinity")
		if out := mustDocker(t, "", "exec", "daemon", "echo", "from exec"); out != "from exec\n" {
			t.Errorf("exec output %q", out)
		}
		if _, _, code := docker(t, "", "exec", "daemon", "sh", "-c", "exit 5"); code != 5 {
			t.Errorf("exec exit code %d, want 5", code)
		}
		mustDocker(t, "", "rm", "-f", "daemon")
	})
	t.Run("errors", func(t *testing.T) {
		_, errOut, code := docker(t, "", "inspect", "--type", "container", "nope")
		if code != 1 || !strings.Contains(errOut, "No such container: nope") {
			t.Errorf("inspect: exit %d, %q", code, errOut)
		}
		_, errOut, code = docker(t, "", "pull", "nothere")
		if code != 1 || !strings.Contains(errOut, "pull access denied for nothere") {
			t.Errorf("pull: exit %d, %q", code, errOut)
		}
	})
	t.Run("networks and volumes", func(t *testing.T) {
		mustDocker(t, "", "network", "create", "appnet")
		if out := mustDocker(t, "", "network", "ls"); !regexp.MustCompile(`(?m)\sappnet\s+bridge\s+local$`).MatchString(out) || !strings.Contains(out, "bridge") {
			t.Errorf("network ls:\n%s", out)
		}
		mustDocker(t, "", "network", "rm", "appnet")
		mustDocker(t, "", "volume", "create", "vol1")
		if out := mustDocker(t, "", "volume", "ls"); !regexp.MustCompile(`(?m)^local\s+vol1$`).MatchString(out) {
			t.Errorf("volume ls:\n%s", out)
		}
	})
	t.Run("images", func(t *testing.T) {
		if out := mustDocker(t, "", "images"); !regexp.MustCompile(`(?m)^busybox\s+latest\s+[0-9a-f]{12}\s`).MatchString(out) {
			t.Errorf("images:\n%s", out)
		}
	})
	t.Run("build", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nCOPY msg /\nCMD [\"echo\", \"built\"]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "msg"), []byte("hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := mustDocker(t, "", "build", "-t", "built:1", dir)
		m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})\n`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "Successfully tagged built:1") {
			t.Fatalf("build output:\n%s", out)
		}
		img, err := ts.Client.ImageInspect(testContext(t), "built:1")
		if err != nil || !strings.HasPrefix(img.ID, "sha256:"+m[1]) {
			t.Errorf("built:1 is %s (%v), the build printed %s", img.ID, err, m[1])
		}
		quiet := mustDocker(t, "", "build", "-q", dir)
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(quiet) {
			t.Errorf("build -q printed %q, want the image ID", quiet)
		}
		if out := mustDocker(t, "", "run", "--rm", "built:1"); out != "built\n" {
			t.Errorf("running the built image: %q", out)
		}
	})
}
