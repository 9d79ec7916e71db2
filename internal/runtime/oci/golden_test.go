package oci

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// rootfsPlaceholder stands for the test's temporary rootfs in golden files.
const rootfsPlaceholder = "/ROOTFS"

// goldenConfigs are representative containers; each has its spec in
// testdata/<name>.json.
func goldenConfigs(rootfs string) map[string]Config {
	const files = "/var/lib/skiff/containers/c1"
	return map[string]Config{
		"default": {
			ID: "c1", Rootfs: rootfs, Args: []string{"/bin/sh", "-c", "echo hi"},
			Env: []string{"APP=1"}, User: "app", Hostname: "c1",
			HostsPath: files + "/hosts", ResolvConfPath: files + "/resolv.conf", HostnamePath: files + "/hostname",
		},
		"privileged": {
			ID: "c2", Rootfs: rootfs, Args: []string{"/bin/sh"}, Hostname: "c2", Terminal: true,
			Privileged: true, CapDrop: []string{"chown"},
		},
		"readonly-capdrop": {
			ID: "c3", Rootfs: rootfs, Args: []string{"/srv/web", "--port", "80"}, Hostname: "web", Domainname: "example.org",
			ReadOnlyRootfs: true, User: "1000:1000", AdditionalGroups: []string{"video"}, Cwd: "/srv",
			CapDrop: []string{"ALL"}, CapAdd: []string{"net_bind_service", "CAP_CHOWN"}, NoNewPrivileges: true,
			Tmpfs:     map[string]string{"/run": "", "/tmp": "size=64m,exec"},
			Mounts:    []Mount{{Destination: "/srv/config", Source: "/etc/web", ReadOnly: true}},
			HostsPath: files + "/hosts", ResolvConfPath: files + "/resolv.conf",
		},
		"resources": {
			ID: "c4", Rootfs: rootfs, Args: []string{"/bin/stress"}, Hostname: "c4", CgroupPath: "/skiff/limited/c4",
			Resources: Resources{
				MemoryBytes: 256 << 20, MemorySwapBytes: 512 << 20, NanoCPUs: 1_500_000_000, CPUShares: 512,
				CpusetCpus: "0-1", CpusetMems: "0", PidsLimit: 100, OOMScoreAdj: 500,
			},
			ShmSize: 128 << 20,
			Rlimits: []Rlimit{{Type: "nofile", Soft: 4096, Hard: 8192}, {Type: "nproc", Soft: 512, Hard: 512}},
			Sysctls: map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "68719476736"},
		},
		"joined-namespaces": {
			ID: "c5", Rootfs: rootfs, Args: []string{"/pause"}, Hostname: "pod-1", CgroupPath: "/skiff/pods/pod-1/c5",
			NetNS: "/run/skiff/netns/pod-1", IPCNS: "/proc/4242/ns/ipc", UTSNS: "/proc/4242/ns/uts", PIDNS: "/proc/4242/ns/pid",
			Mounts: []Mount{{Destination: "/dev/shm", Source: "/run/skiff/pods/pod-1/shm"}},
		},
	}
}

// marshalGolden renders s as a golden file, with rootfs replaced.
func marshalGolden(t *testing.T, s *specs.Spec, rootfs string) []byte {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.ReplaceAll(b, []byte(rootfs), []byte(rootfsPlaceholder)), '\n')
}

func TestGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("the golden files are for amd64 (the seccomp profile differs on %s)", runtime.GOARCH)
	}
	// The golden files show Docker's profile as is (x32 kept); see
	// TestSeccompWithoutX32 for hosts whose kernel lacks the x32 ABI.
	defer func(f func() bool) { x32Enabled = f }(x32Enabled)
	x32Enabled = func() bool { return true }
	rootfs := testRootfs(t)
	for name, c := range goldenConfigs(rootfs) {
		t.Run(name, func(t *testing.T) {
			s, err := buildSpec(c, testHost())
			if err != nil {
				t.Fatalf("buildSpec: %v", err)
			}
			got := marshalGolden(t, s, rootfs)
			file := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("spec differs from %s (run go test -update to accept) (-want +got):\n%s", file, cmp.Diff(string(want), string(got)))
			}
		})
	}
}
