// Package runtimetest helps tests run real containers: it builds the
// skiff-shim binary and makes busybox root filesystems. The runtime's,
// the engine's and the end-to-end tests import it; production code must
// not.
package runtimetest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BuildTags are the tags skiff-shim is built with (as in the Makefile).
const BuildTags = "seccomp runc_nocriu"

// BusyboxPath is where Debian's busybox-static puts busybox.
const BusyboxPath = "/usr/bin/busybox"

var (
	shimOnce sync.Once
	shimPath string
	shimErr  error
)

// ShimBinary builds skiff-shim once per test process, into a temporary
// directory, and returns its path. $SKIFF_TEST_SHIM, when set, names a
// binary to use instead (a -race build, a variant being measured).
func ShimBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SKIFF_TEST_SHIM"); p != "" {
		return p
	}
	shimOnce.Do(func() {
		dir, err := BinDir("skiff-shim-bin-")
		if err != nil {
			shimErr = err
			return
		}
		shimPath = filepath.Join(dir, "skiff-shim")
		cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", shimPath, "skiff.dev/skiff/cmd/skiff-shim")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("building skiff-shim: %v\n%s", err, out)
		}
	})
	if shimErr != nil {
		t.Fatal(shimErr)
	}
	return shimPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// SkipUnlessRoot skips tests that create containers when not root.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containers need root (namespaces, cgroups, mounts); run the tests as root")
	}
}

// BusyboxRootfs makes a root filesystem in a temporary directory: busybox
// in /bin with a symlink per applet (sh, echo, cat, ps, ...), and empty
// /proc, /dev, /sys, /tmp and /etc. It skips the test when busybox is
// missing (`make test-tools` installs it).
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("no %s (Debian's busybox-static; `make test-tools` installs it)", BusyboxPath)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bb := filepath.Join(root, "bin", "busybox")
	if err := copyFile(bb, BusyboxPath); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
