package integration_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// kubectl runs the real kubectl (the skiff binary under that name)
// against a test's API server.
type kubectl struct {
	path string
	env  []string
}

func newKubectl(t *testing.T, env *testenv.Env) *kubectl {
	return &kubectl{
		path: filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl"),
		env:  append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "HOME="+t.TempDir()),
	}
}

func (k *kubectl) cmd(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, k.path, args...)
	c.Env = append(append([]string{}, k.env...), extraEnv...)
	c.WaitDelay = 5 * time.Second
	return c
}

// run runs kubectl to its end and returns its stdout, stderr and exit
// code.
func (k *kubectl) run(t *testing.T, stdin string, extraEnv []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := k.cmd(ctx, extraEnv, args...)
	var out, errOut bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(stdin), &out, &errOut
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// ok runs kubectl and fails the test unless it exits 0.
func (k *kubectl) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := k.run(t, "", nil, args...)
	if code != 0 {
		t.Fatalf("kubectl %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// lines collects a stream's output and tells when something appeared.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) waitFor(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in 30s; got %q", what, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// background starts kubectl and stops it at the end of the test.
func (k *kubectl) background(t *testing.T, stdin io.Reader, args ...string) (*lines, *lines) {
	t.Helper()
	c := k.cmd(context.Background(), nil, args...)
	out, errOut := &lines{}, &lines{}
	c.Stdin, c.Stdout, c.Stderr = stdin, out, errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	return out, errOut
}

func streamsPod() *corev1.Pod {
	grace := int64(1)
	bb := func(name string, script string) corev1.Container {
		return corev1.Container{Name: name, Image: "busybox", ImagePullPolicy: corev1.PullNever, Command: []string{"sh", "-c", script}}
	}
	attach := bb("c3", "while read l; do echo got:$l; done")
	attach.Stdin = true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "two", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "node1",
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{
				// stdout and stderr are pumped apart: lines written at
				// once may be logged in either order, hence the sleep.
				bb("c1", "echo hello from c1; sleep 0.3; echo to stderr >&2; while true; do if [ -f /tmp/go ]; then echo later; rm /tmp/go; fi; sleep 0.2; done"),
				bb("c2", "mkdir -p /www && echo hello from c2 > /www/index.html && exec httpd -f -p 80 -h /www"),
				attach,
			},
		},
	}
}

// restartingPod's container fails once, then runs: its previous log says
// "first run", its current one "second run".
func restartingPod() *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "restarter", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "node1",
			TerminationGracePeriodSeconds: &grace,
			Volumes:                       []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullNever,
				Command:      []string{"sh", "-c", "[ -f /data/once ] || { touch /data/once; echo first run; exit 1; }; echo second run; exec sleep 3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
		},
	}
}

// TestKubectlStreams drives the node through the API server with the
// real kubectl: logs (-f, --previous, --tail, --since, --timestamps,
// -c), exec (both protocols, a terminal, exit codes), attach,
// port-forward, cp, and nodes/proxy; and the errors of bad requests.
func TestKubectlStreams(t *testing.T) {
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(t)
	dir := t.TempDir()
	importBusybox(t, filepath.Join(dir, "data"))
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	startNode(t, env, dir)
	t.Cleanup(func() { removeAllPods(t, c, dir) })
	k := newKubectl(t, env)

	for _, p := range []*corev1.Pod{streamsPod(), restartingPod()} {
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitPod(t, c, "two", "running and ready", isReady)
	waitPod(t, c, "restarter", "restarted and running", func(p *corev1.Pod) bool {
		return isReady(p) && p.Status.ContainerStatuses[0].RestartCount == 1
	})
	started := time.Now()

	t.Run("get and describe", func(t *testing.T) {
		wide := k.ok(t, "get", "pods", "two", "-o", "wide")
		if !regexp.MustCompile(`(?m)^two\s+3/3\s+Running\s+0\s+\S+\s+10\.244\.0\.\d+\s+node1\s`).MatchString(wide) {
			t.Errorf("get pods -o wide:\n%s", wide)
		}
		desc := k.ok(t, "describe", "pod", "two")
		for _, want := range []string{"node1/", "10.244.0.", "Events:", "Pulled", "Created", "Started"} {
			if !strings.Contains(desc, want) {
				t.Errorf("describe pod lacks %q:\n%s", want, desc)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		// c1 writes its stderr line 0.3 s after starting.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if strings.Contains(k.ok(t, "logs", "two", "c1"), "to stderr") {
				break
			}
		}
		if out := k.ok(t, "logs", "two", "c1"); out != "hello from c1\nto stderr\n" {
			t.Errorf("logs two c1: %q", out)
		}
		if out := k.ok(t, "logs", "two", "-c", "c1", "--tail=1"); out != "to stderr\n" {
			t.Errorf("--tail=1: %q", out)
		}
		out := k.ok(t, "logs", "two", "-c", "c1", "--timestamps")
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello from c1\n\S+ to stderr\n$`).MatchString(out) {
			t.Errorf("--timestamps: %q", out)
		}
		if out := k.ok(t, "logs", "two", "-c", "c1", "--since=1h"); out != "hello from c1\nto stderr\n" {
			t.Errorf("--since=1h: %q", out)
		}
		time.Sleep(time.Until(started.Add(2 * time.Second)))
		if out := k.ok(t, "logs", "two", "-c", "c1", "--since=1s"); out != "" {
			t.Errorf("--since=1s: %q", out)
		}
		if out := k.ok(t, "logs", "two", "-c", "c1", "--limit-bytes=5"); out != "hello" {
			t.Errorf("--limit-bytes=5: %q", out)
		}
		if out := k.ok(t, "logs", "restarter"); out != "second run\n" {
			t.Errorf("logs restarter: %q", out)
		}
		if out := k.ok(t, "logs", "restarter", "--previous"); out != "first run\n" {
			t.Errorf("logs restarter --previous: %q", out)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		out, _ := k.background(t, nil, "logs", "-f", "two", "-c", "c1")
		out.waitFor(t, "to stderr\n")
		k.ok(t, "exec", "two", "-c", "c1", "--", "touch", "/tmp/go")
		out.waitFor(t, "to stderr\nlater\n")
	})

	t.Run("exec", func(t *testing.T) {
		pid1 := regexp.MustCompile(`(?m)^\s*1\s+root\s+(\S+\s+)?sh -c echo hello from c1;`)
		// The default: WebSocket first, then SPDY after the failed upgrade.
		out, errOut, code := k.run(t, "", nil, "-v=4", "exec", "two", "-c", "c1", "--", "ps", "aux")
		if code != 0 || !pid1.MatchString(out) {
			t.Errorf("exec ps aux: exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "RemoteCommand fallback") {
			t.Errorf("no WebSocket attempt before SPDY:\n%s", errOut)
		}
		// SPDY only.
		out, errOut, code = k.run(t, "", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}, "-v=4", "exec", "two", "-c", "c1", "--", "ps", "aux")
		if code != 0 || !pid1.MatchString(out) || strings.Contains(errOut, "RemoteCommand fallback") {
			t.Errorf("exec ps aux over SPDY: exit %d\n%s%s", code, out, errOut)
		}
		// The command's exit code is kubectl's.
		if _, errOut, code := k.run(t, "", nil, "exec", "two", "-c", "c1", "--", "sh", "-c", "exit 3"); code != 3 {
			t.Errorf("exit code %d, want 3 (%s)", code, errOut)
		}
		// How long an exec takes, both ways (reported, not asserted).
		for _, env := range [][]string{nil, {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}} {
			var took []time.Duration
			for range 5 {
				start := time.Now()
				if _, errOut, code := k.run(t, "", env, "exec", "two", "-c", "c1", "--", "true"); code != 0 {
					t.Fatalf("exec true: %d %s", code, errOut)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			t.Logf("kubectl exec -- true %v: median %v (min %v, max %v)", env, took[2], took[0], took[4])
		}
		// Stdin.
		if out, errOut, code := k.run(t, "piped in\n", nil, "exec", "-i", "two", "-c", "c1", "--", "cat"); code != 0 || out != "piped in\n" {
			t.Errorf("exec -i cat: exit %d %q %s", code, out, errOut)
		}
	})

	t.Run("exec -it", func(t *testing.T) {
		pty, slavePath, err := console.NewPty()
		if err != nil {
			t.Fatal(err)
		}
		defer pty.Close()
		if err := pty.Resize(console.WinSize{Width: 100, Height: 40}); err != nil {
			t.Fatal(err)
		}
		slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmd := k.cmd(context.Background(), nil, "exec", "-it", "two", "--container", "c2", "--", "sh")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		defer func() {
			select {
			case <-exited:
			default:
				cmd.Process.Kill()
				<-exited
			}
		}()
		screen := &lines{}
		go io.Copy(screen, pty)
		screen.waitFor(t, "# ") // the shell's prompt, in c2
		io.WriteString(pty, "echo $((6*7)) $(cat /www/index.html); stty size\r")
		screen.waitFor(t, "42 hello from c2")
		screen.waitFor(t, "40 100")
		io.WriteString(pty, "exit 0\r")
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("kubectl exec -it: %v\n%s", waitErr, screen.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("kubectl exec -it did not end; screen:\n%s", screen.String())
		}
	})

	t.Run("attach", func(t *testing.T) {
		stdin, w := io.Pipe()
		defer w.Close()
		out, _ := k.background(t, stdin, "attach", "-i", "two", "-c", "c3")
		for i := 0; !strings.Contains(out.String(), "got:hello"); i++ {
			// Lines typed before the attach took hold are not seen.
			if i == 150 {
				t.Fatalf("no echo from the attached container: %q", out.String())
			}
			io.WriteString(w, "hello\n")
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		for _, env := range [][]string{nil, {"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}} {
			c := k.cmd(context.Background(), env, "port-forward", "pod/two", "18080:80")
			out := &lines{}
			c.Stdout, c.Stderr = out, out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			out.waitFor(t, "Forwarding from 127.0.0.1:18080")
			for range 2 {
				resp, err := http.Get("http://127.0.0.1:18080/index.html")
				if err != nil {
					t.Fatalf("%v: %v\n%s", env, err, out.String())
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "hello from c2\n" {
					t.Errorf("%v: got %d %q", env, resp.StatusCode, b)
				}
			}
			c.Process.Kill()
			c.Wait()
		}
	})

	t.Run("cp", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "note.txt")
		if err := os.WriteFile(local, []byte("copied in\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		k.ok(t, "cp", local, "default/two:/tmp/note.txt", "-c", "c1")
		if out := k.ok(t, "exec", "two", "-c", "c1", "--", "cat", "/tmp/note.txt"); out != "copied in\n" {
			t.Errorf("copied into the pod: %q", out)
		}
		back := filepath.Join(t.TempDir(), "index.html")
		k.ok(t, "cp", "default/two:/www/index.html", back, "-c", "c2")
		if b, err := os.ReadFile(back); err != nil || string(b) != "hello from c2\n" {
			t.Errorf("copied out of the pod: %q %v", b, err)
		}
	})

	t.Run("node proxy", func(t *testing.T) {
		if out := k.ok(t, "get", "--raw", "/api/v1/nodes/node1/proxy/healthz"); out != "ok" {
			t.Errorf("healthz through nodes/proxy: %q", out)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		if _, errOut, code := k.run(t, "", nil, "logs", "two", "-c", "nope"); code == 0 || !strings.Contains(errOut, "container nope is not valid for pod two") {
			t.Errorf("logs of a missing container: exit %d %s", code, errOut)
		}
		if _, errOut, code := k.run(t, "", nil, "exec", "nope", "--", "ls"); code == 0 || !strings.Contains(errOut, `pods "nope" not found`) {
			t.Errorf("exec into a missing pod: exit %d %s", code, errOut)
		}
		// A pod no scheduler placed: kubectl refuses itself, the API
		// server too.
		unplaced := streamsPod()
		unplaced.Name, unplaced.Spec.NodeName = "unplaced", ""
		if _, err := c.CoreV1().Pods("default").Create(ctx, unplaced, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := k.run(t, "", nil, "port-forward", "pod/unplaced", "18081:80"); code == 0 || !strings.Contains(errOut, "pod is not running") {
			t.Errorf("port-forward to a pod without a node: exit %d %s", code, errOut)
		}
		hc, err := rest.HTTPClientFor(env.Config)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Post(env.Config.Host+"/api/v1/namespaces/default/pods/unplaced/portforward", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("pod unplaced does not have a host assigned")) {
			t.Errorf("pods/portforward of a pod without a node: %d %s", resp.StatusCode, body)
		}
	})
}
