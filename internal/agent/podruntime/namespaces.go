package podruntime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsFile is a namespace kept alive by a bind mount on a file, created
// without a process: the name of its /proc/<tid>/ns link and its clone
// flag.
type nsFile struct {
	link string // "ipc", "uts"
	flag int
	path string
}

// createNamespaces unshares the namespaces of files on a new OS thread,
// sets the UTS hostname when a UTS namespace is among them, and binds each
// namespace to its path (which must not exist). The thread is locked and
// then thrown away, so no goroutine ever runs in those namespaces. On
// error nothing is left.
func createNamespaces(hostname string, files ...nsFile) error {
	flags := 0
	for _, f := range files {
		flags |= f.flag
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine ends locked, so the runtime
		// discards the thread instead of reusing it in these namespaces.
		runtime.LockOSThread()
		errc <- unshareAndBind(flags, hostname, files)
	}()
	if err := <-errc; err != nil {
		for _, f := range files {
			_ = removeNSFile(f.path)
		}
		return err
	}
	return nil
}

func unshareAndBind(flags int, hostname string, files []nsFile) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if flags&unix.CLONE_NEWUTS != 0 {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	tid := unix.Gettid()
	for _, f := range files {
		if err := bindNS(fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, f.link), f.path); err != nil {
			return err
		}
	}
	return nil
}

// bindNS bind-mounts the namespace link src on a new file at dst.
func bindNS(src, dst string) error {
	fd, err := os.OpenFile(dst, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("namespace file: %w", err)
	}
	fd.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dst)
		return fmt.Errorf("bind %s to %s: %w", src, dst, err)
	}
	return nil
}

// removeNSFile unmounts a namespace file and removes it; a missing or
// unmounted file is fine.
func removeNSFile(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// isNamespace reports whether path is a namespace of type flag (a bind
// mount that is still there).
func isNamespace(path string, flag int) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	return err == nil && typ == flag
}

// mountShm mounts the pod's /dev/shm: a tmpfs of Docker's and the
// kubelet's default size.
func mountShm(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount the pod's shm at %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is on another device than its parent.
func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// unmountAll detaches dir (every mount stacked on it) and removes it.
func unmountAll(dir string) error {
	for {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
