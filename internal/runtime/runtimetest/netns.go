package runtimetest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InNetNSEnv is set in a test binary that MainInNetNS re-executed.
const InNetNSEnv = "SKIFF_TEST_IN_NETNS"

// MainInNetNS is a TestMain for packages whose tests create bridges, veths
// or nftables rules: as root, the test binary re-executes itself under
// `unshare --net`, so all of it runs in a network namespace of its own and
// the host's network is never touched. Without root (or unshare) the tests
// run as they are and skip what needs root.
func MainInNetNS(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(InNetNSEnv) == "" {
		if _, err := exec.LookPath("unshare"); err == nil {
			cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), InNetNSEnv+"=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "unshare:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// InNetNS reports whether this test binary runs in its own network
// namespace (see MainInNetNS).
func InNetNS() bool { return os.Getenv(InNetNSEnv) != "" }

// BusyboxTar is BusyboxRootfs as an uncompressed layer tarball, for
// images.Service.Import.
func BusyboxTar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTree(&buf, BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// WriteTree writes the tree under root as a tar stream (paths relative to
// root; symlinks as links).
func WriteTree(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if d.Type()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name, _ = filepath.Rel(root, p)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
