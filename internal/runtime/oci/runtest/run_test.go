package runtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/opencontainers/cgroups/devices" // the device cgroup controller
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // runs before the Go runtime in "init"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/runtime/oci"
)

// TestMain lets the test binary be the container's init: libcontainer
// re-executes /proc/self/exe init.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
	os.Exit(m.Run())
}

const busybox = "/usr/bin/busybox"

// rootfs is a busybox root filesystem with a user and a few groups.
func rootfs(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"bin/busybox": string(b),
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
		"etc/group":   "root:x:0:\naudio:x:29:app\nstaff:x:50:\napp:x:1000:\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(r, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"sh", "cat", "grep", "id", "touch", "mount", "tr"} {
		if err := os.Symlink("busybox", filepath.Join(r, "bin", n)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// process is what runc's newProcess makes of spec.Process.
func process(t *testing.T, p *specs.Process) *libcontainer.Process {
	t.Helper()
	lp := &libcontainer.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, Init: true,
		UID: int(p.User.UID), GID: int(p.User.GID),
		NoNewPrivileges: &p.NoNewPrivileges,
		Capabilities: &configs.Capabilities{
			Bounding: p.Capabilities.Bounding, Effective: p.Capabilities.Effective, Permitted: p.Capabilities.Permitted,
		},
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	types := map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC}
	for _, r := range p.Rlimits {
		typ, ok := types[r.Type]
		if !ok {
			t.Fatalf("test does not map %s", r.Type)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: typ, Soft: r.Soft, Hard: r.Hard})
	}
	return lp
}

// run starts c's spec under libcontainer, waits for it and returns its
// output. The container, its state and its cgroups go away at cleanup.
func run(t *testing.T, c oci.Config) string {
	t.Helper()
	parent := fmt.Sprintf("skiff-oci-test-%d", os.Getpid())
	c.CgroupPath = "/" + parent + "/" + c.ID
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, d := range append(dirs, "/sys/fs/cgroup/"+parent) {
			_ = os.Remove(d) // rmdir: only once empty
		}
	})
	s, err := oci.Spec(c)
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: c.ID, Spec: s})
	if err != nil {
		t.Fatalf("CreateLibcontainerConfig: %v", err)
	}
	ctr, err := libcontainer.Create(t.TempDir(), c.ID, cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		if err := ctr.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	var out bytes.Buffer
	p := process(t, s.Process)
	p.Stdout, p.Stderr = &out, &out
	if err := ctr.Run(p); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if _, err := p.Wait(); err != nil {
		t.Fatalf("wait: %v\n%s", err, out.String())
	}
	return out.String()
}

// script prints what the checks look for, one fact per line.
const script = `id
grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "nofile $(ulimit -n)"
echo "pid1 $(tr '\0' ' ' </proc/1/cmdline)"
mount | grep ' on /sys type '
touch /probe 2>/dev/null || echo "rootfs not writable"
(echo >>/etc/hosts) 2>/dev/null || echo "hosts not writable"
touch /data/probe 2>/dev/null || echo "data not writable"
echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null)"
echo "pids $(cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null)"
echo done`

func TestRunContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting containers needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("no %s (Debian's busybox-static): %v", busybox, err)
	}
	major, _, _ := seccomp.Version()
	withSeccomp := major > 0 // libcontainer built with -tags seccomp
	if !withSeccomp {
		t.Log("libcontainer built without the seccomp tag: containers run unconfined")
	}
	root := rootfs(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		config oci.Config
		want   []string // lines of output
		seccmp bool     // a default profile is expected in force
	}{
		{
			name: "defaults as a user",
			config: oci.Config{
				User: "app", AdditionalGroups: []string{"staff"}, HostsPath: hosts,
			},
			want: []string{
				"uid=1000(app) gid=1000(app) groups=29(audio),50(staff),1000(app)",
				"CapBnd:\t00000000a80425fb", // Docker's 14 default capabilities
				"NoNewPrivs:\t0",
				"nofile 1024",
				"pid1 /bin/sh -c " + strings.SplitN(script, "\n", 2)[0],
			},
			seccmp: true,
		},
		{
			name: "read-only, no capabilities, limits",
			config: oci.Config{
				ReadOnlyRootfs: true, CapDrop: []string{"ALL"}, NoNewPrivileges: true, HostsPath: hosts,
				Mounts:    []oci.Mount{{Destination: "/data", Source: t.TempDir(), ReadOnly: true}},
				Resources: oci.Resources{MemoryBytes: 64 << 20, NanoCPUs: 5e8, PidsLimit: 20},
				Rlimits:   []oci.Rlimit{{Type: "nofile", Soft: 512, Hard: 4096}},
			},
			want: []string{
				"uid=0(root) gid=0(root) groups=0(root)",
				"CapBnd:\t0000000000000000",
				"NoNewPrivs:\t1",
				"nofile 512",
				"rootfs not writable",
				"hosts not writable",
				"data not writable",
				"memory 67108864",
				"pids 20",
			},
			seccmp: true,
		},
		{
			name:   "privileged",
			config: oci.Config{Privileged: true},
			want:   []string{"Seccomp:\t0", "sysfs on /sys type sysfs (rw,"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.config
			c.ID = fmt.Sprintf("oci-run-%d", i)
			c.Rootfs, c.Args, c.Hostname = root, []string{"/bin/sh", "-c", script}, "box"
			c.SeccompUnconfined = !withSeccomp
			out := run(t, c)
			want := tt.want
			if tt.seccmp && withSeccomp {
				want = append(want, "Seccomp:\t2")
			}
			for _, w := range append(want, "done") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
