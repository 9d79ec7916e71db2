package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// The engine creates bridges, veths and nftables rules: as root, this test
// binary re-executes itself in a network namespace of its own (unshare -n),
// so nothing touches the host's network.

func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

type testEngine struct {
	*Engine
	cancel context.CancelFunc
	opts   Options
}

// newTestEngine starts an engine over dataDir (fresh when empty) with a
// busybox image named "busybox".
func newTestEngine(t testing.TB, dataDir string) *testEngine {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	fresh := dataDir == ""
	if fresh {
		dataDir = t.TempDir()
	}
	store := content.New(filepath.Join(dataDir, "images"))
	if err := store.Init(); err != nil {
		t.Fatal(err)
	}
	var e *Engine
	imgs := images.New(store, images.WithInUse(func(id string) bool { return e.ImageInUse(id) }))
	ctx, cancel := context.WithCancel(context.Background())
	if fresh {
		if _, err := imgs.Import(ctx, bytes.NewReader(runtimetest.BusyboxTar(t)), "busybox"); err != nil {
			t.Fatal(err)
		}
	}
	runDir := filepath.Join(dataDir, "run")
	nets := bridge.New(bridge.Options{StateDir: filepath.Join(dataDir, "networks"), Logger: slog.New(slog.DiscardHandler)})
	opts := Options{
		DataDir:   dataDir,
		RunDir:    runDir,
		Store:     store,
		Images:    imgs,
		Snapshots: snapshot.New(filepath.Join(dataDir, "layers"), store),
		Runtime:   runtime.New(runtime.Options{StateDir: filepath.Join(runDir, "runtime"), ShimPath: runtimetest.ShimBinary(t)}),
		Networks:  nets,
	}
	e = New(opts)
	if err := nets.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	te := &testEngine{Engine: e, cancel: cancel, opts: opts}
	t.Cleanup(func() { te.stop(); nets.Close() })
	if fresh {
		t.Cleanup(func() { removeAll(t, te) })
	}
	return te
}

// stop ends the engine; containers keep running.
func (te *testEngine) stop() {
	te.cancel()
	te.Wait()
}

// removeAll force-removes every container (with a fresh engine if this
// one was stopped) so no process, mount or cgroup outlives the test.
func removeAll(t testing.TB, te *testEngine) {
	ctx := context.Background()
	e := te.Engine
	if te.ctx.Err() != nil {
		e = New(te.opts)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := e.Start(cctx); err != nil {
			t.Errorf("cleanup engine: %v", err)
			return
		}
	}
	for _, c := range e.ctrs.all() {
		if err := e.ContainerRemove(ctx, c.rec.ID, dockerapi.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("cleanup %s: %v", c.rec.Name, err)
		}
	}
}

// run creates and starts a container and returns its ID.
func (te *testEngine) run(t *testing.T, name string, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	ctx := context.Background()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	resp, err := te.ContainerCreate(ctx, name, container.CreateRequest{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := te.ContainerStart(ctx, resp.ID); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return resp.ID
}

// wait waits for the container to stop and returns its state.
func (te *testEngine) wait(t *testing.T, id string) container.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := te.ContainerWait(ctx, id, container.WaitConditionNotRunning, nil); err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	in, err := te.ContainerInspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	return *in.State
}

func (te *testEngine) logs(t *testing.T, id string) string {
	t.Helper()
	var b strings.Builder
	err := te.ContainerLogs(context.Background(), id, dockerapi.LogsOptions{Stdout: true, Stderr: true}, func(e dockerapi.LogEntry) error {
		b.Write(e.Line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// output runs cmd to completion in a new container and returns its log.
func (te *testEngine) output(t *testing.T, hc *container.HostConfig, cmd ...string) (string, container.State) {
	t.Helper()
	id := te.run(t, "", &container.Config{Cmd: cmd}, hc)
	st := te.wait(t, id)
	return te.logs(t, id), st
}

func TestRunAndIsolation(t *testing.T) {
	te := newTestEngine(t, "")
	cases := []struct {
		name     string
		hc       *container.HostConfig
		cmd      []string
		wantCode int
		want     string
		wantOOM  bool
	}{
		{name: "echo", cmd: []string{"echo", "hello"}, want: "hello\n"},
		{name: "exit code", cmd: []string{"sh", "-c", "exit 3"}, wantCode: 3},
		{name: "own pid namespace", cmd: []string{"sh", "-c", "echo $$; ps -o pid,comm | wc -l"}, want: "1\n"},
		{name: "hostname is the short id", cmd: []string{"hostname"}},
		{name: "root by default", cmd: []string{"id", "-u"}, want: "0\n"},
		{name: "user", hc: nil, cmd: []string{"sh", "-c", "id -u"}, want: "0\n"},
		{name: "own cgroup", cmd: []string{"cat", "/proc/self/cgroup"}, want: "/skiff/"},
		{name: "cap-drop chown", hc: &container.HostConfig{CapDrop: []string{"chown"}}, cmd: []string{"sh", "-c", "touch /f && chown 1 /f"}, wantCode: 1, want: "Operation not permitted"},
		{name: "chown allowed by default", cmd: []string{"sh", "-c", "touch /f && chown 1 /f && echo ok"}, want: "ok\n"},
		{name: "read-only rootfs", hc: &container.HostConfig{ReadonlyRootfs: true}, cmd: []string{"touch", "/x"}, wantCode: 1, want: "Read-only file system"},
		{name: "network none has only lo", hc: &container.HostConfig{NetworkMode: "none"}, cmd: []string{"sh", "-c", "ls /sys/class/net"}, want: "lo\n"},
		{name: "default bridge has eth0", cmd: []string{"sh", "-c", "ls /sys/class/net | tr '\\n' ' '"}, want: "eth0 lo "},
		{name: "oom kill", hc: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}}, cmd: []string{"sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"}, wantCode: 137, wantOOM: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, st := te.output(t, c.hc, c.cmd...)
			if st.ExitCode != c.wantCode || st.OOMKilled != c.wantOOM {
				t.Fatalf("exit %d oom %v, want %d %v; output:\n%s", st.ExitCode, st.OOMKilled, c.wantCode, c.wantOOM, out)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("output %q does not contain %q", out, c.want)
			}
		})
	}
}

func TestUserNetworkAndSharedNetns(t *testing.T) {
	te := newTestEngine(t, "")
	ctx := context.Background()
	if _, err := te.NetworkCreate(ctx, network.CreateRequest{Name: "appnet"}); err != nil {
		t.Fatal(err)
	}
	web := te.run(t, "web", &container.Config{Cmd: []string{"sh", "-c", "echo hi-from-web > /www && httpd -f -p 80 -h /"}}, &container.HostConfig{NetworkMode: "appnet"})
	out, st := te.output(t, &container.HostConfig{NetworkMode: "appnet"}, "wget", "-qO-", "http://web/www")
	if st.ExitCode != 0 || out != "hi-from-web\n" {
		t.Fatalf("by name: exit %d, %q", st.ExitCode, out)
	}
	in, err := te.ContainerInspect(ctx, web, false)
	if err != nil {
		t.Fatal(err)
	}
	ip := in.NetworkSettings.Networks["appnet"].IPAddress.String()
	out, _ = te.output(t, &container.HostConfig{NetworkMode: container.NetworkMode("container:web")}, "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(out, ip+"/") {
		t.Fatalf("container:web sees %q, want web's IP %s", out, ip)
	}
	if err := te.NetworkRemove(ctx, "appnet"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("removing a network in use: %v", err)
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	te := newTestEngine(t, "")
	id := te.run(t, "flaky", &container.Config{Cmd: []string{"sh", "-c", "echo run; exit 2"}},
		&container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		in, err := te.ContainerInspect(context.Background(), id, false)
		if err != nil {
			t.Fatal(err)
		}
		if !in.State.Running && !in.State.Restarting && in.RestartCount == 3 {
			if in.State.ExitCode != 2 {
				t.Fatalf("exit code %d", in.State.ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart count %d, state %+v", in.RestartCount, in.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // no fourth restart
	in, _ := te.ContainerInspect(context.Background(), id, false)
	if in.RestartCount != 3 || in.State.Running {
		t.Fatalf("restarted past the limit: %d", in.RestartCount)
	}
	if got := strings.Count(te.logs(t, id), "run\n"); got != 4 {
		t.Fatalf("ran %d times, want 4", got)
	}
}

func TestEngineRestartKeepsContainers(t *testing.T) {
	te := newTestEngine(t, "")
	id := te.run(t, "sleeper", &container.Config{Cmd: []string{"sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"}}, nil)
	dataDir := te.opts.DataDir
	te.stop()

	te2 := newTestEngine(t, dataDir)
	ctx := context.Background()
	in, err := te2.ContainerInspect(ctx, id, false)
	if err != nil || !in.State.Running {
		t.Fatalf("after engine restart: %+v %v", in.State, err)
	}
	list, _ := te2.ContainerList(ctx, dockerapi.ListOptions{})
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("ps after restart: %+v", list)
	}
	if err := te2.ContainerStop(ctx, id, dockerapi.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	st := te2.wait(t, id)
	if st.ExitCode != 0 || te2.logs(t, id) != "started\nbye\n" {
		t.Fatalf("stop: %+v %q", st, te2.logs(t, id))
	}
	removeAll(t, te2)
}

func TestBadInputLeavesNothing(t *testing.T) {
	te := newTestEngine(t, "")
	ctx := context.Background()
	te.run(t, "taken", &container.Config{Cmd: []string{"true"}}, nil)
	cases := []struct {
		name string
		cfg  *container.Config
		hc   *container.HostConfig
		want error
		msg  string
	}{
		{"unknown image", &container.Config{Image: "nope:1"}, nil, errdefs.ErrNotFound, "No such image: nope:1"},
		{"bad restart policy", &container.Config{}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, errdefs.ErrInvalid, "invalid restart policy"},
		{"retries without on-failure", &container.Config{}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: 2}}, errdefs.ErrInvalid, "maximum retry count"},
		{"bad volume", &container.Config{}, &container.HostConfig{Binds: []string{"data:relative"}}, errdefs.ErrInvalid, "invalid volume specification"},
		{"bad volume name", &container.Config{}, &container.HostConfig{Binds: []string{"da ta:/x"}}, errdefs.ErrInvalid, "invalid characters"},
		{"bad host port", &container.Config{}, &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "99999"}}}}, errdefs.ErrInvalid, "invalid host port"},
		{"name clash", &container.Config{}, nil, errdefs.ErrConflict, "already in use"},
		{"unknown network", &container.Config{}, &container.HostConfig{NetworkMode: "nosuchnet"}, errdefs.ErrNotFound, "network nosuchnet not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Image == "" {
				c.cfg.Image = "busybox"
			}
			c.cfg.Cmd = []string{"true"}
			name := ""
			if c.name == "name clash" {
				name = "taken"
			}
			_, err := te.ContainerCreate(ctx, name, container.CreateRequest{Config: c.cfg, HostConfig: c.hc})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	list, _ := te.ContainerList(ctx, dockerapi.ListOptions{All: true})
	if len(list) != 1 {
		t.Fatalf("bad requests left containers: %d", len(list))
	}
	// A port clash fails at start and leaves no network state behind.
	te.run(t, "p1", &container.Config{Cmd: []string{"sleep", "30"}}, &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}})
	resp, err := te.ContainerCreate(ctx, "p2", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "30"}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := te.ContainerStart(ctx, resp.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("port clash at start: %v", err)
	}
	if _, err := os.Stat(te.netnsPath(resp.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed start left its netns: %v", err)
	}
	if mounted(t, te.ctrs.path(resp.ID, "rootfs")) {
		t.Fatal("failed start left its rootfs mounted")
	}
}

func mounted(t *testing.T, p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), " "+p+" ")
}

// TestConformance: the engine keeps the Backend contract the Docker API
// server relies on (the same suite the fake passes).
func TestConformance(t *testing.T) {
	dockerapitest.RunConformance(t, func(t *testing.T) dockerapi.Backend { return newTestEngine(t, "").Engine })
}

func TestCommitAndExport(t *testing.T) {
	te := newTestEngine(t, "")
	ctx := context.Background()
	id := te.run(t, "maker", &container.Config{Cmd: []string{"sh", "-c", "echo made > /made.txt"}, Env: []string{"A=1"}}, nil)
	te.wait(t, id)
	img, err := te.ContainerCommit(ctx, "maker", dockerapi.CommitOptions{Reference: "committed:v1", Author: "me", Comment: "a note", Changes: []string{`CMD ["cat", "/made.txt"]`}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := te.ImageInspect(ctx, "committed:v1")
	if err != nil || in.ID != img || in.Author != "me" {
		t.Fatalf("inspect committed image: %+v %v", in, err)
	}
	id2 := te.run(t, "", &container.Config{Image: "committed:v1"}, nil)
	if st := te.wait(t, id2); st.ExitCode != 0 || te.logs(t, id2) != "made\n" {
		t.Fatalf("a container of the committed image: %+v %q", st, te.logs(t, id2))
	}
	if in.Config == nil || !slices.Contains(in.Config.Env, "A=1") {
		t.Fatalf("committed config lost the container's env: %+v", in.Config)
	}
	var buf bytes.Buffer
	if err := te.ContainerExport(ctx, "maker", &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		found = found || h.Name == "made.txt"
	}
	if !found {
		t.Fatal("export has no made.txt")
	}
}

// BenchmarkRunTrue: create, start, wait for and remove a container running
// /bin/true (no network), in-process — the engine's share of `run --rm`.
func BenchmarkRunTrue(b *testing.B) {
	for _, mode := range []string{"none", "bridge"} {
		b.Run(mode, func(b *testing.B) {
			te := newTestEngine(b, "")
			ctx := context.Background()
			for b.Loop() {
				resp, err := te.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode), SecurityOpt: benchSecOpt()}})
				if err != nil {
					b.Fatal(err)
				}
				if err := te.ContainerStart(ctx, resp.ID); err != nil {
					b.Fatal(err)
				}
				if _, err := te.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning, nil); err != nil {
					b.Fatal(err)
				}
				if err := te.ContainerRemove(ctx, resp.ID, dockerapi.RemoveOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchSecOpt() []string {
	if os.Getenv("BENCH_UNCONFINED") != "" {
		return []string{"seccomp=unconfined"}
	}
	return nil
}

// TestBuildEveryInstruction: the images issue's first acceptance, with RUN
// executed by the engine: a multi-stage Dockerfile using every instruction
// builds, its config is Docker's, a rebuild is all cache hits, and changing
// one copied file rebuilds from that step on.
func TestBuildEveryInstruction(t *testing.T) {
	te := newTestEngine(t, "")
	ctx := context.Background()
	files := map[string]string{
		"Dockerfile": `ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
WORKDIR /src
COPY greeting.txt .
RUN echo "$GREETING $(cat greeting.txt)" > /src/out.txt && mkdir -p /etc && echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd

FROM busybox
LABEL org.example.app=demo
MAINTAINER skiff
ENV APP_HOME=/app PORT=8080
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt ./out.txt
COPY --from=builder --chown=1000:1000 /etc/passwd /etc/passwd
ADD data.tar /data/
RUN ls /data > /app/listing && chown -R 1000 /app
USER app
EXPOSE 8080/tcp 9090/udp
VOLUME ["/var/cache/app"]
HEALTHCHECK --interval=5s --timeout=2s CMD ["cat", "/app/out.txt"]
STOPSIGNAL SIGQUIT
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo child
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/out.txt /app/listing; id -un"]
`,
		"greeting.txt": "world\n",
	}
	var dataTar bytes.Buffer
	tw := tar.NewWriter(&dataTar)
	tw.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 1})
	tw.Write([]byte("a"))
	tw.Close()
	files["data.tar"] = dataTar.String()
	build := func() (string, string) {
		t.Helper()
		var ctxTar bytes.Buffer
		tw := tar.NewWriter(&ctxTar)
		for name, body := range files {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
			tw.Write([]byte(body))
		}
		tw.Close()
		var progress strings.Builder
		id, err := te.ImageBuild(ctx, &ctxTar, dockerapi.BuildOptions{Tags: []string{"every:1"}}, &progress)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, progress.String())
		}
		return id, progress.String()
	}
	id, progress := build()
	in, err := te.ImageInspect(ctx, "every:1")
	if err != nil || in.ID != id {
		t.Fatalf("inspect: %v", err)
	}
	c := in.Config
	switch {
	case c.User != "app", c.WorkingDir != "/app", c.StopSignal != "SIGQUIT",
		!slices.Contains(c.Env, "APP_HOME=/app"), !slices.Contains(c.Env, "PORT=8080"),
		!slices.Equal(c.Entrypoint, []string{"sh", "-c"}), !slices.Equal(c.Cmd, []string{"cat /app/out.txt /app/listing; id -un"}),
		c.Labels["org.example.app"] != "demo", len(c.ExposedPorts) != 2, len(c.Volumes) != 1,
		c.Healthcheck == nil || c.Healthcheck.Interval != 5*time.Second, len(c.OnBuild) != 1, in.Author != "skiff":
		t.Fatalf("image config: %+v (author %q)", c, in.Author)
	}
	rid := te.run(t, "", &container.Config{Image: "every:1"}, nil)
	if st := te.wait(t, rid); st.ExitCode != 0 || te.logs(t, rid) != "hello world\na.txt\napp\n" {
		t.Fatalf("running the built image: %+v %q", st, te.logs(t, rid))
	}

	id2, progress := build()
	if id2 != id || strings.Contains(progress, "Running in") || strings.Count(progress, "Using cache") < 20 {
		t.Fatalf("rebuild not all from cache (id %s vs %s):\n%s", id2, id, progress)
	}
	files["greeting.txt"] = "there\n"
	id3, progress := build()
	if id3 == id || !strings.Contains(progress, "Step 4/23 : COPY greeting.txt .\n ---> ") || strings.Contains(progress, "Step 4/23 : COPY greeting.txt .\n ---> Using cache") {
		t.Fatalf("changing greeting.txt should rebuild from its COPY:\n%s", progress)
	}
	if !strings.Contains(progress, "Step 3/23 : WORKDIR /src\n ---> Using cache") {
		t.Fatalf("steps before the changed COPY should stay cached:\n%s", progress)
	}
}
