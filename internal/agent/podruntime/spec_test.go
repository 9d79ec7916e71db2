package podruntime

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/oci"
)

func TestContainerArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"--default"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		img           ocispec.ImageConfig
		want          []string
	}{
		{"image's entrypoint and cmd", nil, nil, img, []string{"/entry", "--default"}},
		{"args replace cmd", nil, []string{"--x"}, img, []string{"/entry", "--x"}},
		{"command replaces both", []string{"/bin/sh"}, nil, img, []string{"/bin/sh"}},
		{"command and args", []string{"/bin/sh"}, []string{"-c", "true"}, img, []string{"/bin/sh", "-c", "true"}},
		{"cmd only image", nil, nil, ocispec.ImageConfig{Cmd: []string{"sh"}}, []string{"sh"}},
		{"args without entrypoint", nil, []string{"echo", "hi"}, ocispec.ImageConfig{Cmd: []string{"sh"}}, []string{"echo", "hi"}},
		{"nothing to run", nil, nil, ocispec.ImageConfig{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerArgs(tc.command, tc.args, tc.img)
			if tc.want == nil {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("got %q, %v; want an invalid error", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestUserSpec(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name      string
		c         ContainerConfig
		imageUser string
		want      string
		wantErr   string
	}{
		{"image's user", ContainerConfig{}, "app:staff", "app:staff", ""},
		{"root by default", ContainerConfig{}, "", "", ""},
		{"runAsUser", ContainerConfig{User: n(1000)}, "app", "1000", ""},
		{"runAsUser and runAsGroup", ContainerConfig{User: n(1000), Group: n(3000)}, "app", "1000:3000", ""},
		{"runAsGroup over the image's user", ContainerConfig{Group: n(3000)}, "app:staff", "app:3000", ""},
		{"runAsGroup alone", ContainerConfig{Group: n(3000)}, "", "0:3000", ""},
		{"non-root: runAsUser", ContainerConfig{RunAsNonRoot: true, User: n(1000)}, "", "1000", ""},
		{"non-root: numeric image user", ContainerConfig{RunAsNonRoot: true}, "1000:1000", "1000:1000", ""},
		{"non-root: runAsUser 0", ContainerConfig{RunAsNonRoot: true, User: n(0)}, "", "", "container's runAsUser breaks non-root policy"},
		{"non-root: image runs as root", ContainerConfig{RunAsNonRoot: true}, "", "", "container has runAsNonRoot and image will run as root"},
		{"non-root: image user 0", ContainerConfig{RunAsNonRoot: true}, "0:1000", "", "container has runAsNonRoot and image will run as root"},
		{"non-root: named image user", ContainerConfig{RunAsNonRoot: true}, "app", "", "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root"},
		{"non-root: named user, runAsUser wins", ContainerConfig{RunAsNonRoot: true, User: n(7)}, "app", "7", ""},
		{"negative uid", ContainerConfig{User: n(-1)}, "", "", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name = "c"
			got, err := userSpec(&tc.c, tc.imageUser, "p_ns(uid)")
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %q, %v; want an invalid error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []string{"B=3", "C=4", "A="})
	want := []string{"PATH=/bin", "A=", "B=3", "C=4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"", syscall.SIGTERM}, {"SIGQUIT", syscall.SIGQUIT}, {"quit", syscall.SIGQUIT}, {"9", syscall.SIGKILL}, {"SIGNOPE", 0}, {"99", 0},
	} {
		got, err := stopSignal(tc.in)
		if got != tc.want || (tc.want == 0) != (err != nil) {
			t.Errorf("stopSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestOCIConfig(t *testing.T) {
	no := false
	sb := Sandbox{
		ID: "sb", NetNS: "/run/sb/net", IPCNS: "/run/sb/ipc", UTSNS: "/run/sb/uts", ShmPath: "/run/sb/shm",
		HostsPath: "/run/sb/hosts", ResolvPath: "/run/sb/resolv.conf", HostnamePath: "/run/sb/hostname",
		PodUID: "uid-1", Namespace: "ns", Name: "pod", Hostname: "pod-host", Sysctls: map[string]string{"net.ipv4.tcp_syncookies": "0"},
	}
	base := ContainerConfig{Name: "c", Command: []string{"run"}}
	for _, tc := range []struct {
		name  string
		c     func(*ContainerConfig)
		sb    func(*Sandbox)
		check func(t *testing.T, cfg oci.Config)
	}{
		{"sandbox namespaces and files", nil, nil, func(t *testing.T, cfg oci.Config) {
			if cfg.NetNS != sb.NetNS || cfg.IPCNS != sb.IPCNS || cfg.UTSNS != sb.UTSNS || cfg.PIDNS != oci.NamespaceNew {
				t.Errorf("namespaces %q %q %q %q", cfg.NetNS, cfg.IPCNS, cfg.UTSNS, cfg.PIDNS)
			}
			if cfg.HostsPath != sb.HostsPath || cfg.ResolvConfPath != sb.ResolvPath || cfg.HostnamePath != sb.HostnamePath {
				t.Errorf("files %q %q %q", cfg.HostsPath, cfg.ResolvConfPath, cfg.HostnamePath)
			}
			if !hasMount(cfg.Mounts, "/dev/shm", sb.ShmPath) {
				t.Errorf("no pod /dev/shm in %+v", cfg.Mounts)
			}
			if cfg.Hostname != "pod-host" || cfg.CgroupPath != "/skiff/pods/poduid-1/id" || cfg.Sysctls["net.ipv4.tcp_syncookies"] != "0" {
				t.Errorf("hostname %q, cgroup %q, sysctls %v", cfg.Hostname, cfg.CgroupPath, cfg.Sysctls)
			}
			if !cfg.SeccompUnconfined || cfg.NoNewPrivileges || cfg.Cwd != "/img" {
				t.Errorf("seccomp unconfined %v, no_new_privs %v, cwd %q", cfg.SeccompUnconfined, cfg.NoNewPrivileges, cfg.Cwd)
			}
		}},
		{"host namespaces", nil, func(s *Sandbox) { *s = Sandbox{PodUID: "u", HostPID: true, HostNetwork: true, HostIPC: true} }, func(t *testing.T, cfg oci.Config) {
			if cfg.NetNS != oci.NamespaceHost || cfg.IPCNS != oci.NamespaceHost || cfg.UTSNS != oci.NamespaceHost || cfg.PIDNS != oci.NamespaceHost {
				t.Errorf("namespaces %q %q %q %q", cfg.NetNS, cfg.IPCNS, cfg.UTSNS, cfg.PIDNS)
			}
			if slices.ContainsFunc(cfg.Mounts, func(m oci.Mount) bool { return m.Destination == "/dev/shm" }) {
				t.Errorf("a /dev/shm mount with the host's IPC: %+v", cfg.Mounts)
			}
		}},
		{"security context", func(c *ContainerConfig) {
			c.AllowPrivilegeEscalation = &no
			c.SeccompProfile = SeccompRuntimeDefault
			c.SupplementalGroups = []int64{5, 6}
			c.ReadOnlyRootfs = true
			c.CapAdd, c.CapDrop = []string{"NET_ADMIN"}, []string{"ALL"}
		}, nil, func(t *testing.T, cfg oci.Config) {
			if !cfg.NoNewPrivileges || cfg.SeccompUnconfined || !cfg.ReadOnlyRootfs || !slices.Equal(cfg.AdditionalGroups, []string{"5", "6"}) {
				t.Errorf("no_new_privs %v, seccomp unconfined %v, read-only %v, groups %q", cfg.NoNewPrivileges, cfg.SeccompUnconfined, cfg.ReadOnlyRootfs, cfg.AdditionalGroups)
			}
			if !slices.Equal(cfg.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(cfg.CapDrop, []string{"ALL"}) {
				t.Errorf("caps +%q -%q", cfg.CapAdd, cfg.CapDrop)
			}
		}},
		{"privileged keeps privilege escalation", func(c *ContainerConfig) { c.Privileged, c.AllowPrivilegeEscalation = true, &no }, nil, func(t *testing.T, cfg oci.Config) {
			if !cfg.Privileged || cfg.NoNewPrivileges {
				t.Errorf("privileged %v, no_new_privs %v", cfg.Privileged, cfg.NoNewPrivileges)
			}
		}},
		{"resources", func(c *ContainerConfig) {
			c.CPUShares, c.CPUQuota, c.CPUPeriod, c.MemoryLimit, c.OOMScoreAdj = 512, 50000, 100000, 64<<20, 999
		}, nil, func(t *testing.T, cfg oci.Config) {
			want := oci.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryBytes: 64 << 20, OOMScoreAdj: 999}
			if cfg.Resources != want {
				t.Errorf("resources %+v, want %+v", cfg.Resources, want)
			}
		}},
		{"termination message file", func(c *ContainerConfig) { c.TerminationMessagePath = "/dev/termination-log" }, nil, func(t *testing.T, cfg oci.Config) {
			if !hasMount(cfg.Mounts, "/dev/termination-log", "/data/id/termination-log") {
				t.Errorf("no termination-log mount in %+v", cfg.Mounts)
			}
		}},
		{"environment over the image's", func(c *ContainerConfig) { c.Env = []string{"B=2"} }, nil, func(t *testing.T, cfg oci.Config) {
			if !slices.Equal(cfg.Env, []string{"PATH=/img/bin", "A=1", "B=2"}) {
				t.Errorf("env %q", cfg.Env)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := base, sb
			if tc.c != nil {
				tc.c(&c)
			}
			if tc.sb != nil {
				tc.sb(&s)
			}
			cfg, err := ociConfig(specInput{
				id: "id", rootfs: "/rootfs", c: &c, sb: s, termLog: "/data/id/termination-log",
				image: ocispec.ImageConfig{Env: []string{"PATH=/img/bin", "A=1", "B=1"}, WorkingDir: "/img"},
			})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
			// Whatever it makes, package oci must accept (which checks the
			// capabilities against this process's own: root's).
			if os.Geteuid() != 0 {
				return
			}
			if _, err := oci.Spec(cfg); err != nil {
				t.Errorf("oci.Spec: %v", err)
			}
		})
	}
	c := base
	c.SeccompProfile = "localhost/profile.json"
	if _, err := ociConfig(specInput{id: "id", rootfs: "/rootfs", c: &c, sb: sb}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a localhost seccomp profile: %v", err)
	}
}

func hasMount(ms []oci.Mount, dst, src string) bool {
	return slices.ContainsFunc(ms, func(m oci.Mount) bool {
		return m.Destination == dst && m.Source == src && m.Type == "bind"
	})
}

func TestCredentialMatches(t *testing.T) {
	for _, tc := range []struct {
		key, registry, resource string
		want                    bool
	}{
		{"https://index.docker.io/v1/", "index.docker.io", "index.docker.io/library/busybox", true},
		{"docker.io", "index.docker.io", "index.docker.io/library/busybox", true},
		{"registry.example:5000", "registry.example:5000", "registry.example:5000/app", true},
		{"registry.example:5000", "registry.example", "registry.example/app", false},
		{"example.com/team", "example.com", "example.com/team/app", true},
		{"example.com/team", "example.com", "example.com/teamx/app", false},
		{"example.com/team", "example.com", "example.com/other/app", false},
		{"http://localhost:5000/", "localhost:5000", "localhost:5000/app", true},
	} {
		if got := credentialMatches(tc.key, tc.registry, tc.resource); got != tc.want {
			t.Errorf("credentialMatches(%q, %q, %q) = %v, want %v", tc.key, tc.registry, tc.resource, got, tc.want)
		}
	}
}
