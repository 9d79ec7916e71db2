package oci

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// baseConfig is the smallest valid Config on rootfs.
func baseConfig(rootfs string) Config {
	return Config{ID: "c1", Rootfs: rootfs, Args: []string{"/bin/sh"}, Hostname: "c1"}
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var d []string
	for _, m := range s.Mounts {
		d = append(d, m.Destination)
	}
	return d
}

func namespaceTypes(s *specs.Spec) []string {
	var n []string
	for _, ns := range s.Linux.Namespaces {
		n = append(n, string(ns.Type)+"="+ns.Path)
	}
	return n
}

func allowsSyscall(s *specs.Spec, name string) bool {
	if s.Linux.Seccomp == nil {
		return true
	}
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
			return true
		}
	}
	return false
}

func equal[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestSpec(t *testing.T) {
	rootfs := testRootfs(t)
	tests := []struct {
		name    string
		config  func(c *Config)
		host    func(h *host)
		wantErr bool // errdefs.ErrInvalid
		check   func(t *testing.T, s *specs.Spec)
	}{
		{
			name: "docker defaults",
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "caps", defaultCaps(), s.Process.Capabilities.Bounding)
				equal(t, "effective caps", defaultCaps(), s.Process.Capabilities.Effective)
				equal(t, "permitted caps", defaultCaps(), s.Process.Capabilities.Permitted)
				equal(t, "inheritable caps", []string(nil), s.Process.Capabilities.Inheritable)
				equal(t, "mounts", []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}, destinations(s))
				equal(t, "/dev/shm", []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}, mountAt(s, "/dev/shm").Options)
				equal(t, "namespaces", []string{"mount=", "network=", "uts=", "pid=", "ipc="}, namespaceTypes(s))
				equal(t, "env", []string{"PATH=" + DefaultPath, "HOSTNAME=c1"}, s.Process.Env)
				equal(t, "args", []string{"/bin/sh"}, s.Process.Args)
				equal(t, "cwd", "/", s.Process.Cwd)
				equal(t, "user", specs.User{AdditionalGids: []uint32{0}}, s.Process.User)
				equal(t, "rlimits", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}, s.Process.Rlimits)
				equal(t, "oom score adj", 0, *s.Process.OOMScoreAdj)
				equal(t, "sysctls", DefaultNetworkSysctls(), s.Linux.Sysctl)
				equal(t, "cgroup path", "/skiff/c1", s.Linux.CgroupsPath)
				equal(t, "hostname", "c1", s.Hostname)
				equal(t, "masked", 12, len(s.Linux.MaskedPaths))
				equal(t, "readonly", defaultReadonlyPaths(), s.Linux.ReadonlyPaths)
				equal(t, "devices", []specs.LinuxDevice(nil), s.Linux.Devices)
				equal(t, "device rules", defaultDeviceRules(), s.Linux.Resources.Devices)
				equal(t, "root", specs.Root{Path: rootfs}, *s.Root)
				if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
					t.Errorf("seccomp = %+v, want Docker's default profile", s.Linux.Seccomp)
				}
				if allowsSyscall(s, "mount") || !allowsSyscall(s, "read") {
					t.Error("default seccomp profile should allow read and not mount")
				}
				if s.Process.NoNewPrivileges || s.Process.Terminal || s.Root.Readonly {
					t.Error("no-new-privileges, terminal and read-only are off by default")
				}
			},
		},
		{
			name: "cap-add appends, cap-drop removes, names in any case",
			config: func(c *Config) {
				c.CapAdd = []string{"sys_admin", "CAP_NET_ADMIN", "chown"}
				c.CapDrop = []string{"Net_Raw", "MKNOD"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				want := slices.DeleteFunc(defaultCaps(), func(c string) bool { return c == "CAP_NET_RAW" || c == "CAP_MKNOD" })
				want = append(want, "CAP_SYS_ADMIN", "CAP_NET_ADMIN")
				equal(t, "caps", want, s.Process.Capabilities.Bounding)
				if !allowsSyscall(s, "mount") {
					t.Error("seccomp should allow mount with CAP_SYS_ADMIN (profile applied after caps)")
				}
			},
		},
		{
			name:   "cap-drop ALL then cap-add",
			config: func(c *Config) { c.CapDrop = []string{"ALL"}; c.CapAdd = []string{"net_bind_service"} },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "caps", []string{"CAP_NET_BIND_SERVICE"}, s.Process.Capabilities.Bounding)
			},
		},
		{
			name:   "cap-drop all leaves nothing",
			config: func(c *Config) { c.CapDrop = []string{"all"} },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "caps", 0, len(s.Process.Capabilities.Bounding))
			},
		},
		{
			name:   "cap-add ALL minus cap-drop",
			config: func(c *Config) { c.CapAdd = []string{"ALL"}; c.CapDrop = []string{"SYS_ADMIN", "ALL"} },
			check: func(t *testing.T, s *specs.Spec) {
				want := slices.DeleteFunc(knownCaps(), func(c string) bool { return c == "CAP_SYS_ADMIN" })
				equal(t, "caps", want, s.Process.Capabilities.Bounding)
			},
		},
		{
			name:   "cap-add ALL grants only what the host has",
			config: func(c *Config) { c.CapAdd = []string{"ALL"} },
			host:   func(h *host) { h.caps = []string{"CAP_CHOWN", "CAP_KILL"} },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "caps", []string{"CAP_CHOWN", "CAP_KILL"}, s.Process.Capabilities.Bounding)
			},
		},
		{name: "unknown cap-add", config: func(c *Config) { c.CapAdd = []string{"CAP_FLY"} }, wantErr: true},
		{name: "unknown cap-drop", config: func(c *Config) { c.CapDrop = []string{"teleport"} }, wantErr: true},
		{name: "unknown cap even when privileged", config: func(c *Config) { c.Privileged = true; c.CapAdd = []string{"nope"} }, wantErr: true},
		{name: "cap the host lacks", config: func(c *Config) { c.CapAdd = []string{"BPF"} }, host: func(h *host) { h.caps = defaultCaps() }, wantErr: true},
		{
			name:   "privileged",
			config: func(c *Config) { c.Privileged = true; c.CapDrop = []string{"chown"} },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "caps", knownCaps(), s.Process.Capabilities.Bounding)
				if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
					t.Error("privileged has no seccomp, masked or read-only paths")
				}
				equal(t, "/sys", []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/sys").Options)
				equal(t, "/sys/fs/cgroup", []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/sys/fs/cgroup").Options)
				equal(t, "device rules", privilegedDeviceRules(), s.Linux.Resources.Devices)
				equal(t, "devices", 3, len(s.Linux.Devices))
			},
		},
		{
			name:   "seccomp unconfined",
			config: func(c *Config) { c.SeccompUnconfined = true },
			check: func(t *testing.T, s *specs.Spec) {
				if s.Linux.Seccomp != nil {
					t.Error("seccomp should be off")
				}
				equal(t, "caps", defaultCaps(), s.Process.Capabilities.Bounding)
			},
		},
		{
			name: "terminal, env order, later wins, unset",
			config: func(c *Config) {
				c.Terminal = true
				c.Env = []string{"A=1", "PATH=/bin", "B=2", "A=3", "HOSTNAME", "TERM=vt100", "EMPTY=", "GONE=x", "GONE"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "env", []string{"PATH=/bin", "TERM=vt100", "A=3", "B=2", "EMPTY="}, s.Process.Env)
				if !s.Process.Terminal {
					t.Error("terminal not set")
				}
			},
		},
		{name: "env without a name", config: func(c *Config) { c.Env = []string{"=x"} }, wantErr: true},
		{name: "env with NUL", config: func(c *Config) { c.Env = []string{"A=x\x00y"} }, wantErr: true},
		{
			name: "user, groups, cwd, no-new-privileges, oom",
			config: func(c *Config) {
				c.User = "app"
				c.AdditionalGroups = []string{"staff"}
				c.Cwd = "/home/app/"
				c.NoNewPrivileges = true
				c.Resources.OOMScoreAdj = 500
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "user", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44, 50}}, s.Process.User)
				equal(t, "cwd", "/home/app", s.Process.Cwd)
				equal(t, "nnp", true, s.Process.NoNewPrivileges)
				equal(t, "oom", 500, *s.Process.OOMScoreAdj)
			},
		},
		{name: "unknown user", config: func(c *Config) { c.User = "ghost" }, wantErr: true},
		{name: "relative cwd", config: func(c *Config) { c.Cwd = "work" }, wantErr: true},
		{name: "no command", config: func(c *Config) { c.Args = nil }, wantErr: true},
		{name: "no id", config: func(c *Config) { c.ID = "" }, wantErr: true},
		{name: "relative rootfs", config: func(c *Config) { c.Rootfs = "rootfs" }, wantErr: true},
		{name: "oom out of range", config: func(c *Config) { c.Resources.OOMScoreAdj = 1001 }, wantErr: true},
		{name: "dirty cgroup path", config: func(c *Config) { c.CgroupPath = "/skiff/../c1" }, wantErr: true},
		{name: "negative shm size", config: func(c *Config) { c.ShmSize = -1 }, wantErr: true},
		{
			name: "host namespaces",
			config: func(c *Config) {
				c.NetNS, c.IPCNS, c.UTSNS, c.PIDNS = NamespaceHost, NamespaceHost, NamespaceHost, NamespaceHost
				c.Domainname = "example.org"
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "namespaces", []string{"mount="}, namespaceTypes(s))
				equal(t, "sysctls", map[string]string(nil), s.Linux.Sysctl)
				equal(t, "hostname", "", s.Hostname+s.Domainname)
				equal(t, "HOSTNAME still set", "HOSTNAME=c1", s.Process.Env[1])
				m := mountAt(s, "/dev/shm")
				equal(t, "host /dev/shm", specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}}, *m)
			},
		},
		{
			name: "joined namespaces",
			config: func(c *Config) {
				c.NetNS, c.IPCNS, c.UTSNS, c.PIDNS = "/run/netns/pod", "/proc/10/ns/ipc", "/proc/10/ns/uts", "/proc/10/ns/pid"
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "namespaces", []string{"mount=", "network=/run/netns/pod", "uts=/proc/10/ns/uts", "pid=/proc/10/ns/pid", "ipc=/proc/10/ns/ipc"}, namespaceTypes(s))
				equal(t, "no default sysctls in someone else's netns", map[string]string(nil), s.Linux.Sysctl)
			},
		},
		{
			name:   "cgroup v2 host: private cgroup namespace, even privileged",
			host:   func(h *host) { h.cgroup2 = true },
			config: func(c *Config) { c.Privileged = true },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "namespaces", []string{"mount=", "network=", "uts=", "pid=", "ipc=", "cgroup="}, namespaceTypes(s))
			},
		},
		{name: "bad namespace mode", config: func(c *Config) { c.PIDNS = "container:x" }, wantErr: true},
		{
			name: "sysctls merge over the defaults",
			config: func(c *Config) {
				c.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1", "net/ipv4/ip_forward": "1"}
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "sysctls", map[string]string{
					"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "1024",
					"kernel.shmmax": "1", "net/ipv4/ip_forward": "1",
				}, s.Linux.Sysctl)
			},
		},
		{name: "net sysctl in the host netns", config: func(c *Config) { c.NetNS = NamespaceHost; c.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"} }, wantErr: true},
		{name: "ipc sysctl in the host ipc ns", config: func(c *Config) { c.IPCNS = NamespaceHost; c.Sysctls = map[string]string{"fs.mqueue.msg_max": "1"} }, wantErr: true},
		{name: "sysctl not namespaced", config: func(c *Config) { c.Sysctls = map[string]string{"vm.swappiness": "1"} }, wantErr: true},
		{name: "hostname sysctl", config: func(c *Config) { c.Sysctls = map[string]string{"kernel.hostname": "x"} }, wantErr: true},
		{
			name: "rlimits: caller's first, default nofile",
			config: func(c *Config) {
				c.Rlimits = []Rlimit{{Type: "nproc", Soft: 10, Hard: 20}, {Type: "RLIMIT_core", Soft: 0, Hard: 0}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "rlimits", []specs.POSIXRlimit{
					{Type: "RLIMIT_NPROC", Soft: 10, Hard: 20}, {Type: "RLIMIT_CORE"}, {Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024},
				}, s.Process.Rlimits)
			},
		},
		{
			name:   "rlimits: nofile given",
			config: func(c *Config) { c.Rlimits = []Rlimit{{Type: "NOFILE", Soft: 4096, Hard: 65536}} },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "rlimits", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 4096, Hard: 65536}}, s.Process.Rlimits)
			},
		},
		{
			name: "rlimits: default nofile clamped to nr_open",
			host: func(h *host) { h.nrOpen = 512 },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "rlimits", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}}, s.Process.Rlimits)
			},
		},
		{name: "rlimit nofile above nr_open", config: func(c *Config) { c.Rlimits = []Rlimit{{Type: "nofile", Soft: 1, Hard: 1 << 21}} }, wantErr: true},
		{name: "rlimit unknown", config: func(c *Config) { c.Rlimits = []Rlimit{{Type: "bananas"}} }, wantErr: true},
		{name: "rlimit soft above hard", config: func(c *Config) { c.Rlimits = []Rlimit{{Type: "nproc", Soft: 2, Hard: 1}} }, wantErr: true},
		{name: "rlimit twice", config: func(c *Config) { c.Rlimits = []Rlimit{{Type: "nproc"}, {Type: "RLIMIT_NPROC"}} }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig(rootfs)
			if tt.config != nil {
				tt.config(&c)
			}
			h := testHost()
			if tt.host != nil {
				tt.host(h)
			}
			s, err := buildSpec(c, h)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("buildSpec = %v; want errdefs.ErrInvalid", err)
				}
				if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
					t.Errorf("error %q should start lowercase", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildSpec: %v", err)
			}
			tt.check(t, s)
		})
	}
}
