// Package netns creates, deletes and enters Linux network namespaces that are
// kept alive by a bind mount on a file (like `ip netns add`), so that a
// namespace outlives the processes in it and can be found again by path.
//
// Network namespaces belong to OS threads, not to goroutines: Do locks the
// calling goroutine to its thread while fn runs. Sockets keep the namespace
// they were created in, so a listener opened inside Do may be served from any
// goroutine afterwards.
//
// Anything in Skiff may import this package; it imports nothing of Skiff's
// but errdefs.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

// Create makes a new network namespace and bind-mounts it at path (creating
// the parent directory). Its loopback interface is up. It fails with
// errdefs.ErrAlreadyExists when path exists.
func Create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create netns %s: %w", path, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f.Close()

	// The namespace is made on a thread of its own that never returns to the
	// scheduler: the goroutine ends locked, so the runtime throws the thread
	// away instead of reusing it in the wrong namespace.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- createOnThisThread(path)
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

func createOnThisThread(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Delete unmounts the namespace at path and removes the file. The namespace
// itself goes away once no process, socket or mount holds it any more. A
// missing path is not an error.
func Delete(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", path, err)
	}
	return nil
}

// Do runs fn with the calling goroutine's OS thread in the network namespace
// at path, and puts the thread back where it was afterwards. Goroutines that
// fn starts do not inherit the namespace. If the thread cannot be put back it
// stays locked to the goroutine, so the runtime discards it when the
// goroutine exits rather than let other goroutines run in the wrong
// namespace.
func Do(path string, fn func() error) error {
	target, err := Open(path)
	if err != nil {
		return err
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: current namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: enter: %w", path, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			return // poisoned thread: keep it locked so that it dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Open opens the network namespace at path (a bind mount, or a
// /proc/PID/ns/net link), for handles that work in it without entering it.
// It fails with errdefs.ErrNotFound when path does not exist and
// errdefs.ErrInvalid when it is not a network namespace.
func Open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("netns %s: %w", path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		f.Close()
		return nil, fmt.Errorf("netns %s: not a network namespace: %w", path, errdefs.ErrInvalid)
	}
	return f, nil
}
