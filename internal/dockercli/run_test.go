package dockercli

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestRunDetachedPrintsID(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "run", "-d", "--name", "web", "busybox", "sleep", "100")
	if r.err != nil {
		t.Fatalf("run -d: %v (stderr %q)", r.err, r.errOut)
	}
	f.mu.Lock()
	id := f.containers[0].id
	state := f.containers[0].state
	f.mu.Unlock()
	if r.out != id+"\n" {
		t.Errorf("stdout = %q, want the ID %q", r.out, id)
	}
	if state != container.StateRunning {
		t.Errorf("container state = %s, want running", state)
	}
	for _, req := range f.requestLog() {
		if strings.Contains(req, "/attach") || strings.Contains(req, "/wait") {
			t.Errorf("detached run sent %s", req)
		}
	}
}

func TestRunAttachedStreamsAndExitsWithContainerCode(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		stdin          string
		code           int
		stdout, stderr string
	}{
		{name: "output", args: []string{"busybox", "echo", "hello", "world"}, stdout: "hello world\n"},
		{name: "exit code", args: []string{"busybox", "fail", "3"}, code: 3, stderr: "failing\n"},
		{name: "stdin", args: []string{"-i", "busybox", "cat"}, stdin: "one\ntwo\n", stdout: "one\ntwo\n"},
		{name: "attach stdout only", args: []string{"-a", "stdout", "busybox", "fail", "4"}, code: 4},
		{name: "tty output is raw", args: []string{"-t", "busybox", "echo", "hi"}, stdout: "hi\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEngine(t)
			r := runCLI(t, f.host(), tt.stdin, append([]string{"run"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit code %d (err %v), want %d", r.code, r.err, tt.code)
			}
			if tt.code != 0 && r.err.Error() != "exit status "+strconv.Itoa(tt.code) {
				t.Errorf("a container's exit status carries no message, got %q", r.err)
			}
			if r.out != tt.stdout || r.errOut != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", r.out, r.errOut, tt.stdout, tt.stderr)
			}
			if !slices.ContainsFunc(f.requestLog(), func(s string) bool { return strings.Contains(s, "/wait?condition=next-exit") }) {
				t.Errorf("no wait for the next exit in %v", f.requestLog())
			}
		})
	}
}

func TestRunRemoveWaitsForRemoval(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "run", "--rm", "busybox", "echo", "bye")
	if r.err != nil || r.out != "bye\n" {
		t.Fatalf("run --rm: %v, stdout %q", r.err, r.out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.containers) != 0 {
		t.Errorf("%d containers left after run --rm", len(f.containers))
	}
	if !f.creates[0].HostConfig.AutoRemove {
		t.Error("create request lacks AutoRemove")
	}
	if !slices.ContainsFunc(f.requests, func(s string) bool { return strings.Contains(s, "/wait?condition=removed") }) {
		t.Errorf("no wait for removal in %v", f.requests)
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	f := newFakeEngine(t)
	f.pullable["alpine:latest"] = true
	r := runCLI(t, f.host(), "", "run", "alpine", "echo", "pulled")
	if r.err != nil || r.out != "pulled\n" {
		t.Fatalf("run: %v, stdout %q, stderr %q", r.err, r.out, r.errOut)
	}
	if !strings.Contains(r.errOut, "Unable to find image 'alpine:latest' locally") {
		t.Errorf("stderr %q lacks the pull notice", r.errOut)
	}
	creates := 0
	for _, req := range f.requestLog() {
		if strings.HasPrefix(req, "POST /containers/create") {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("%d creates, want 2 (before and after the pull)", creates)
	}

	r = runCLI(t, f.host(), "", "run", "--pull", "never", "nginx")
	if r.code != 125 || !strings.Contains(r.err.Error(), "No such image: nginx:latest") {
		t.Errorf("--pull never of a missing image: code %d, err %v", r.code, r.err)
	}
	r = runCLI(t, f.host(), "", "run", "nginx")
	if r.code != 125 || !strings.Contains(r.err.Error(), "pull access denied") {
		t.Errorf("unpullable image: code %d, err %v", r.code, r.err)
	}
}

func TestRunCommandNotFoundExits127(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "run", "busybox", "nope")
	if r.code != 127 {
		t.Fatalf("exit code %d (err %v), want 127", r.code, r.err)
	}
	if !strings.HasPrefix(r.err.Error(), "skiff: Error response from daemon: failed to create task") ||
		!strings.HasSuffix(r.err.Error(), "Run 'skiff run --help' for more information") {
		t.Errorf("message %q", r.err)
	}
}

func TestCreatePrintsIDAndSendsFlags(t *testing.T) {
	f := newFakeEngine(t)
	t.Setenv("FROM_HOST", "passed")
	envFile := t.TempDir() + "/env"
	writeFile(t, envFile, "# comment\nA=1\n  B=two words\n")
	r := runCLI(t, f.host(), "", "create", "--name", "api",
		"-e", "X=1", "-e", "FROM_HOST", "--env-file", envFile,
		"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-P",
		"-v", "data:/data", "-v", "/srv:/srv:ro", "-v", "/anon",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=64m",
		"--network", "appnet", "--network-alias", "api.local",
		"--restart", "on-failure:3", "-m", "64m", "--memory-swap", "1g", "--cpus", "1.5",
		"--cpu-shares", "512", "--cpuset-cpus", "0-1", "--pids-limit", "100",
		"--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--privileged",
		"-u", "1000:1000", "-w", "/work", "--entrypoint", "/bin/sh", "-h", "box",
		"--read-only", "--tmpfs", "/run:size=1m", "-l", "app=api", "--stop-signal", "SIGINT",
		"--stop-timeout", "5", "--add-host", "db:10.0.0.5", "--dns", "1.1.1.1",
		"--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined",
		"--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "128m", "--group-add", "audio",
		"--ulimit", "nofile=1024:2048", "--platform", "linux/amd64",
		"busybox", "-c", "echo hi")
	if r.err != nil {
		t.Fatalf("create: %v (stderr %q)", r.err, r.errOut)
	}
	f.mu.Lock()
	req := f.creates[0]
	id := f.containers[0].id
	f.mu.Unlock()
	if r.out != id+"\n" {
		t.Errorf("stdout %q, want the ID", r.out)
	}
	cfg, host := req.Config, req.HostConfig
	checks := []struct {
		what      string
		got, want any
	}{
		{"env", cfg.Env, []string{"A=1", "B=two words", "X=1", "FROM_HOST=passed"}},
		{"cmd", cfg.Cmd, []string{"-c", "echo hi"}},
		{"entrypoint", cfg.Entrypoint, []string{"/bin/sh"}},
		{"user", cfg.User, "1000:1000"},
		{"workdir", cfg.WorkingDir, "/work"},
		{"hostname", cfg.Hostname, "box"},
		{"labels", cfg.Labels, map[string]string{"app": "api"}},
		{"stop signal", cfg.StopSignal, "SIGINT"},
		{"stop timeout", *cfg.StopTimeout, 5},
		{"anonymous volume", cfg.Volumes, map[string]struct{}{"/anon": {}}},
		{"binds", host.Binds, []string{"data:/data", "/srv:/srv:ro"}},
		{"port 80", host.PortBindings[network.MustParsePort("80/tcp")], []network.PortBinding{{HostPort: "8080"}}},
		{"port 53", host.PortBindings[network.MustParsePort("53/udp")], []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}}},
		{"publish all", host.PublishAllPorts, true},
		{"network", host.NetworkMode, container.NetworkMode("appnet")},
		{"aliases", req.NetworkingConfig.EndpointsConfig["appnet"].Aliases, []string{"api.local"}},
		{"restart", host.RestartPolicy, container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}},
		{"memory", host.Memory, int64(64 << 20)},
		{"swap", host.MemorySwap, int64(1 << 30)},
		{"cpus", host.NanoCPUs, int64(1_500_000_000)},
		{"shares", host.CPUShares, int64(512)},
		{"cpuset", host.CpusetCpus, "0-1"},
		{"pids", *host.PidsLimit, int64(100)},
		{"cap add", host.CapAdd, []string{"CAP_NET_ADMIN"}},
		{"cap drop", host.CapDrop, []string{"CAP_MKNOD"}},
		{"privileged", host.Privileged, true},
		{"read-only", host.ReadonlyRootfs, true},
		{"tmpfs", host.Tmpfs, map[string]string{"/run": "size=1m"}},
		{"mount", host.Mounts[0].Target, "/scratch"},
		{"tmpfs size", host.Mounts[0].TmpfsOptions.SizeBytes, int64(64 << 20)},
		{"extra hosts", host.ExtraHosts, []string{"db:10.0.0.5"}},
		{"dns", host.DNS, []netip.Addr{netip.MustParseAddr("1.1.1.1")}},
		{"security", host.SecurityOpt, []string{"no-new-privileges", "seccomp=unconfined"}},
		{"sysctls", host.Sysctls, map[string]string{"net.ipv4.ip_forward": "1"}},
		{"shm", host.ShmSize, int64(128 << 20)},
		{"groups", host.GroupAdd, []string{"audio"}},
		{"ulimit", host.Ulimits[0].Hard, int64(2048)},
	}
	for _, c := range checks {
		if !equalJSON(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
	if !slices.ContainsFunc(f.requestLog(), func(s string) bool { return strings.Contains(s, "platform=linux%2Famd64") }) {
		t.Errorf("platform not sent: %v", f.requestLog())
	}
}

func TestRunInitIsAcceptedWithANote(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "run", "--init", "busybox", "echo", "x")
	if r.err != nil || !strings.Contains(r.errOut, "--init is accepted but ignored") {
		t.Fatalf("run --init: %v, stderr %q", r.err, r.errOut)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.creates[0].HostConfig.Init != nil {
		t.Error("--init was sent to the engine")
	}
}

func TestBadFlagsNeverReachTheEngine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the message
	}{
		{"port", []string{"-p", "x"}, `invalid argument "x" for "-p, --publish" flag: invalid containerPort: x`},
		{"port out of range", []string{"-p", "70000:80"}, `invalid argument "70000:80" for "-p, --publish" flag: invalid hostPort: 70000`},
		{"port ranges", []string{"-p", "1-3:4-5"}, "invalid ranges specified for container and host Ports: 4-5 and 1-3"},
		{"port ip", []string{"-p", "80:80:80:80"}, "invalid IP address: 80:80"},
		{"port proto", []string{"-p", "80/icmp"}, "invalid proto: icmp"},
		{"volume relative target", []string{"-v", "a:b"}, `invalid argument "a:b" for "-v, --volume" flag: invalid volume specification: 'a:b'`},
		{"volume empty part", []string{"-v", ":/x"}, "empty section between colons"},
		{"volume mode", []string{"-v", "/a:/b:xx"}, "invalid mode: xx"},
		{"restart", []string{"--restart", "sometimes"}, `invalid argument "sometimes" for "--restart" flag: invalid restart policy: unknown policy 'sometimes'`},
		{"restart count", []string{"--restart", "on-failure:x"}, "maximum retry count must be an integer"},
		{"restart count on always", []string{"--restart", "always:3"}, "maximum retry count can only be used with 'on-failure'"},
		{"memory", []string{"-m", "1x"}, `invalid argument "1x" for "-m, --memory" flag: invalid suffix: 'x'`},
		{"cpus", []string{"--cpus", "abc"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{"mount", []string{"--mount", "type=volume"}, `invalid argument "type=volume" for "--mount" flag: target is required`},
		{"attach", []string{"-a", "foo"}, "valid streams are STDIN, STDOUT and STDERR"},
		{"ulimit", []string{"--ulimit", "nofile"}, `invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile`},
		{"tmpfs", []string{"--tmpfs", "run"}, "invalid mount path: 'run' mount path must be absolute"},
		{"expose", []string{"--expose", "80:80"}, "invalid port format for --expose: 80:80"},
		{"security-opt", []string{"--security-opt", "label"}, `invalid --security-opt: "label"`},
		{"memory-swap", []string{"--memory-swap", "lots"}, `invalid argument "lots" for "--memory-swap" flag`},
		{"shm-size", []string{"--shm-size", "-5"}, `invalid argument "-5" for "--shm-size" flag`},
		{"env", []string{"-e", "=x"}, "invalid environment variable: =x"},
		{"label", []string{"-l", "=x"}, "invalid label '=x': empty name"},
		{"add-host", []string{"--add-host", "db"}, `bad format for add-host: "db"`},
		{"dns", []string{"--dns", "one.one"}, "IP address is not correctly formatted: one.one"},
		{"sysctl", []string{"--sysctl", "kernel.hostname=x"}, "sysctl 'kernel.hostname=x' is not allowed"},
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"pull", []string{"--pull", "sometimes"}, `skiff: invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`},
		{"rm and restart", []string{"--rm", "--restart", "always"}, "skiff: conflicting options: cannot specify both --restart and --rm"},
		{"alias on bridge", []string{"--network-alias", "x"}, "network-scoped aliases are only supported for user-defined networks"},
		{"env file", []string{"--env-file", "/nonexistent/env"}, "open /nonexistent/env: no such file or directory"},
		{"platform", []string{"--platform", "linux//"}, "invalid platform"},
		{"image", []string{"UPPER"}, "invalid reference format"},
		{"mixed networks", []string{"--network", "host", "--network", "appnet"}, "cannot attach both user-defined and non-user-defined network-modes"},
		{"swap below memory", []string{"-m", "1g", "--memory-swap", "512m"}, "minimum memoryswap limit should be larger than memory limit"},
	}
	for _, verb := range []string{"run", "create"} {
		for _, tt := range tests {
			t.Run(verb+"/"+tt.name, func(t *testing.T) {
				f := newFakeEngine(t)
				args := append([]string{verb}, tt.args...)
				if tt.name != "image" {
					args = append(args, "busybox")
				}
				r := runCLI(t, f.host(), "", args...)
				if r.code != 125 {
					t.Errorf("exit code %d (err %v), want 125", r.code, r.err)
				}
				if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
					t.Errorf("message %q lacks %q", r.err, tt.want)
				}
				if r.err != nil && !strings.Contains(r.err.Error(), "Run 'skiff "+verb+" --help' for more information") {
					t.Errorf("message %q does not point to --help", r.err)
				}
				if reqs := f.requestLog(); len(reqs) != 0 {
					t.Errorf("the engine got %v", reqs)
				}
			})
		}
	}
}

func TestRunArgumentAndModeErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no image", []string{"run"}, 1, "skiff: 'skiff run' requires at least 1 argument"},
		{"attach and detach", []string{"run", "-d", "-a", "stdout", "busybox"}, 1, "conflicting options: cannot specify both --attach and --detach"},
		{"-it without a terminal", []string{"run", "-it", "busybox"}, 1, "the input device is not a TTY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEngine(t)
			r := runCLI(t, f.host(), "", tt.args...)
			if r.code != tt.code || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("code %d err %v, want %d and %q", r.code, r.err, tt.code, tt.want)
			}
			if reqs := f.requestLog(); len(reqs) != 0 {
				t.Errorf("the engine got %v", reqs)
			}
		})
	}
}
