package oci

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// testPasswd and testGroup are the rootfs's user database in most tests.
const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`
	testGroup = `root:x:0:
daemon:x:1:
tty:x:5:
audio:x:29:app
www-data:x:33:
video:x:44:app,www-data
staff:x:50:
app:x:1000:
nogroup:x:65534:
`
)

// testHost are fixed host facts: a cgroup v1 host like the CI machine,
// every capability, recursive read-only binds, a few devices.
func testHost() *host {
	return &host{
		cgroup2:   false,
		swapLimit: true,
		nrOpen:    1 << 20,
		caps:      knownCaps(),
		rro:       true,
		numCPU:    4,
		devices: func() ([]specs.LinuxDevice, error) {
			mode := fs.FileMode(0o666)
			var root uint32
			return []specs.LinuxDevice{
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &root, GID: &root},
				{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11, FileMode: &mode, UID: &root, GID: &root},
				{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0, FileMode: &mode, UID: &root, GID: &root},
			}, nil
		},
	}
}

// testRootfs makes a root filesystem holding only /etc/passwd and
// /etc/group.
func testRootfs(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), testPasswd)
	writeFile(t, filepath.Join(root, "etc/group"), testGroup)
	return root
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
