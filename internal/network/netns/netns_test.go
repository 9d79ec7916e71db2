package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

// threadNS is the inode of the calling thread's network namespace.
func threadNS(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func fileIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreateDoDelete(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "sub", "ns1")
	if err := Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Delete(path) })

	if err := Create(path); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Create: got %v, want ErrAlreadyExists", err)
	}

	runtime.LockOSThread()
	before := threadNS(t)
	runtime.UnlockOSThread()

	err := Do(path, func() error {
		if got, want := threadNS(t), fileIno(t, path); got != want {
			return fmt.Errorf("inside Do: thread netns %d, want %d", got, want)
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" {
			return fmt.Errorf("links in a new namespace: %v, want only lo", links)
		}
		if links[0].Attrs().Flags&unix.IFF_UP == 0 {
			return errors.New("lo is down")
		}
		// Nested Do into the same namespace restores to it, not to the host.
		return Do(path, func() error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}

	runtime.LockOSThread()
	after := threadNS(t)
	runtime.UnlockOSThread()
	if before != after {
		t.Fatalf("thread left in another namespace: %d, was %d", after, before)
	}

	wantErr := errors.New("from fn")
	if err := Do(path, func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("Do returns fn's error: got %v", err)
	}

	if err := Delete(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("path still there after Delete: %v", err)
	}
	if err := Delete(path); err != nil {
		t.Fatalf("Delete of a missing path: %v", err)
	}
}

func TestDoErrors(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "nope"), errdefs.ErrNotFound},
		{"not a namespace", plain, errdefs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			err := Do(tt.path, func() error { called = true; return nil })
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if called {
				t.Fatal("fn ran although the namespace could not be entered")
			}
		})
	}
}
