package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/configs/validate"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// convert does what the shim does with a spec: specconv, then
// libcontainer's own validation of the result.
func convert(t *testing.T, s *specs.Spec) *configs.Config {
	t.Helper()
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "test", Spec: s})
	if err != nil {
		t.Fatalf("CreateLibcontainerConfig: %v", err)
	}
	if err := validate.Validate(cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return cfg
}

// Every golden spec is one libcontainer accepts.
func TestGoldenConvertsWithSpecconv(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if s.Root == nil || s.Root.Path != rootfsPlaceholder {
				t.Fatalf("root = %+v, want the %s placeholder", s.Root, rootfsPlaceholder)
			}
			s.Root.Path = t.TempDir() // validate checks that the rootfs exists
			cfg := convert(t, &s)

			if cfg.Cgroups.Path != s.Linux.CgroupsPath || cfg.Cgroups.Path == "" {
				t.Errorf("cgroup path %q, want %q", cfg.Cgroups.Path, s.Linux.CgroupsPath)
			}
			if (s.Linux.Seccomp == nil) != (cfg.Seccomp == nil) {
				t.Errorf("seccomp in spec %v, in config %v", s.Linux.Seccomp != nil, cfg.Seccomp != nil)
			}
			// specconv adds the standard device nodes; the spec lists
			// none of its own unless privileged.
			var paths []string
			for _, d := range cfg.Devices {
				paths = append(paths, d.Path)
			}
			for _, want := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"} {
				if !strings.Contains(strings.Join(paths, " "), want) {
					t.Errorf("devices %v lack %s", paths, want)
				}
			}
		})
	}
}

// On this machine, with its real facts, specs convert too; a privileged
// one lists this machine's /dev.
func TestSpecConvertsOnThisHost(t *testing.T) {
	rootfs := testRootfs(t)
	tests := []struct {
		name   string
		config func(c *Config)
	}{
		{name: "default"},
		{name: "privileged", config: func(c *Config) { c.Privileged = true }},
		{name: "read-only, all caps dropped", config: func(c *Config) {
			c.ReadOnlyRootfs, c.CapDrop = true, []string{"ALL"}
			c.Mounts = []Mount{{Destination: "/data", Source: t.TempDir(), ReadOnly: true}}
		}},
		{name: "resources", config: func(c *Config) {
			c.Resources = Resources{MemoryBytes: 64 << 20, NanoCPUs: 5e8, PidsLimit: 10}
		}},
		{name: "host namespaces", config: func(c *Config) {
			c.NetNS, c.IPCNS, c.UTSNS, c.PIDNS = NamespaceHost, NamespaceHost, NamespaceHost, NamespaceHost
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig(rootfs)
			if tt.config != nil {
				tt.config(&c)
			}
			s, err := Spec(c)
			if err != nil {
				t.Fatalf("Spec: %v", err)
			}
			cfg := convert(t, s)
			if c.Privileged && len(cfg.Devices) < 6 {
				t.Errorf("privileged container got %d devices", len(cfg.Devices))
			}
		})
	}
}
