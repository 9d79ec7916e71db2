package oci

import (
	"errors"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

func TestMounts(t *testing.T) {
	rootfs := testRootfs(t)
	defaults := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}
	bind := func(dst, src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	tmpfs := func(dst string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}
	}
	tests := []struct {
		name    string
		config  func(c *Config)
		norro   bool // the host cannot make binds recursively read-only
		wantErr bool
		// want are the mounts after the defaults kept; dests, if set, all
		// destinations in order.
		want       []specs.Mount
		dests      []string
		check      func(t *testing.T, s *specs.Spec)
		rootfsProp string
	}{
		{
			name:   "bind is rbind rprivate",
			config: func(c *Config) { c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data"}} },
			want:   []specs.Mount{bind("/data", "/srv/data", "rbind", "rprivate")},
		},
		{
			name: "read-only bind is recursively read-only",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data", Type: "bind", ReadOnly: true}}
			},
			want: []specs.Mount{bind("/data", "/srv/data", "rbind", "rro", "rprivate")},
		},
		{
			name: "read-only bind on an old kernel",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data", Options: []string{"ro"}}}
			},
			norro: true,
			want:  []specs.Mount{bind("/data", "/srv/data", "rbind", "ro", "rprivate")},
		},
		{
			name: "bind options: non-recursive, shared, extra flags",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data", Options: []string{"bind", "rshared", "nosuid", "rw"}}}
			},
			want:       []specs.Mount{bind("/data", "/srv/data", "bind", "nosuid", "rshared")},
			rootfsProp: "shared",
		},
		{
			name: "slave bind makes the root rslave",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data", Options: []string{"rslave"}}}
			},
			want:       []specs.Mount{bind("/data", "/srv/data", "rbind", "rslave")},
			rootfsProp: "rslave",
		},
		{
			name: "tmpfs: docker --tmpfs defaults and merged options",
			config: func(c *Config) {
				c.Tmpfs = map[string]string{"/tmp": "exec,size=64m,mode=1777,size=32m", "/run": ""}
			},
			want: []specs.Mount{
				tmpfs("/run", "noexec", "nosuid", "nodev", "rprivate"),
				tmpfs("/tmp", "nosuid", "nodev", "rprivate", "exec", "mode=1777", "size=32m"),
			},
		},
		{
			name: "tmpfs mount, read-only",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/cache", Type: "tmpfs", ReadOnly: true, Options: []string{"size=1m", "defaults"}}}
			},
			want: []specs.Mount{tmpfs("/cache", "noexec", "nosuid", "nodev", "rprivate", "ro", "size=1m")},
		},
		{
			name: "sorted by depth, stable",
			config: func(c *Config) {
				c.Mounts = []Mount{
					{Destination: "/a/b/c", Source: "/x"},
					{Destination: "/z", Source: "/x"},
					{Destination: "/a/b", Source: "/x"},
					{Destination: "/a", Source: "/x"},
				}
			},
			dests: append(defaults, "/z", "/a", "/a/b", "/a/b/c"),
		},
		{
			name: "the caller's /dev/shm replaces the default",
			config: func(c *Config) {
				c.Mounts = []Mount{{Destination: "/dev/shm/", Source: "/run/skiff/pod/shm"}}
			},
			dests: []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "/dev/shm", bind("/dev/shm", "/run/skiff/pod/shm", "rbind", "rprivate"), *mountAt(s, "/dev/shm"))
			},
		},
		{
			name:   "the caller's /dev replaces every default under /dev",
			config: func(c *Config) { c.Mounts = []Mount{{Destination: "/dev", Source: "/dev"}} },
			dests:  []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"},
		},
		{
			name: "engine files, in Docker's order",
			config: func(c *Config) {
				c.HostsPath, c.ResolvConfPath, c.HostnamePath = "/var/lib/skiff/c1/hosts", "/var/lib/skiff/c1/resolv.conf", "/var/lib/skiff/c1/hostname"
			},
			want: []specs.Mount{
				bind("/etc/resolv.conf", "/var/lib/skiff/c1/resolv.conf", "rbind", "rprivate"),
				bind("/etc/hostname", "/var/lib/skiff/c1/hostname", "rbind", "rprivate"),
				bind("/etc/hosts", "/var/lib/skiff/c1/hosts", "rbind", "rprivate"),
			},
		},
		{
			name: "the caller's /etc/hosts wins over the engine's",
			config: func(c *Config) {
				c.HostsPath = "/var/lib/skiff/c1/hosts"
				c.Mounts = []Mount{{Destination: "/etc/hosts", Source: "/srv/hosts", ReadOnly: true}}
			},
			want: []specs.Mount{bind("/etc/hosts", "/srv/hosts", "rbind", "rro", "rprivate")},
		},
		{
			name: "read-only rootfs: engine files read-only, caller's mounts as asked",
			config: func(c *Config) {
				c.ReadOnlyRootfs = true
				c.HostsPath = "/var/lib/skiff/c1/hosts"
				c.Mounts = []Mount{{Destination: "/data", Source: "/srv/data"}}
				c.ShmSize = 1 << 20
			},
			want: []specs.Mount{
				bind("/data", "/srv/data", "rbind", "rprivate"),
				bind("/etc/hosts", "/var/lib/skiff/c1/hosts", "rbind", "rro", "rprivate"),
			},
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "/dev/shm", []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1048576"}, mountAt(s, "/dev/shm").Options)
				equal(t, "/sys", []string{"nosuid", "noexec", "nodev", "ro"}, mountAt(s, "/sys").Options)
				equal(t, "/proc", []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/proc").Options)
				if !s.Root.Readonly {
					t.Error("root not read-only")
				}
			},
		},
		{
			name:   "privileged and read-only: /sys rw",
			config: func(c *Config) { c.ReadOnlyRootfs, c.Privileged = true, true },
			check: func(t *testing.T, s *specs.Spec) {
				equal(t, "/sys", []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/sys").Options)
			},
		},
		{name: "relative destination", config: func(c *Config) { c.Mounts = []Mount{{Destination: "data", Source: "/x"}} }, wantErr: true},
		{name: "root destination", config: func(c *Config) { c.Tmpfs = map[string]string{"/": ""} }, wantErr: true},
		{name: "relative bind source", config: func(c *Config) { c.Mounts = []Mount{{Destination: "/data", Source: "data"}} }, wantErr: true},
		{name: "unknown type", config: func(c *Config) { c.Mounts = []Mount{{Destination: "/data", Source: "/x", Type: "volume"}} }, wantErr: true},
		{name: "duplicate destination", config: func(c *Config) {
			c.Mounts = []Mount{{Destination: "/data/", Source: "/x"}}
			c.Tmpfs = map[string]string{"/data": ""}
		}, wantErr: true},
		{name: "bad tmpfs option", config: func(c *Config) { c.Tmpfs = map[string]string{"/tmp": "bogus"} }, wantErr: true},
		{name: "tmpfs data option without a value", config: func(c *Config) { c.Tmpfs = map[string]string{"/tmp": "size"} }, wantErr: true},
		{name: "tmpfs bind option", config: func(c *Config) { c.Mounts = []Mount{{Destination: "/t", Type: "tmpfs", Options: []string{"rbind"}}} }, wantErr: true},
		{name: "relative hosts file", config: func(c *Config) { c.HostsPath = "hosts" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig(rootfs)
			tt.config(&c)
			h := testHost()
			h.rro = !tt.norro
			s, err := buildSpec(c, h)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("buildSpec = %v; want errdefs.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildSpec: %v", err)
			}
			if tt.want != nil {
				equal(t, "default mounts", defaults, destinations(s)[:len(defaults)])
				equal(t, "mounts", tt.want, s.Mounts[len(defaults):])
			}
			if tt.dests != nil {
				equal(t, "destinations", tt.dests, destinations(s))
			}
			equal(t, "rootfs propagation", tt.rootfsProp, s.Linux.RootfsPropagation)
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}
