package wire

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// File names in a container's state directory, <state>/<id>.
const (
	SocketName = "shim.sock"
	ExitName   = "exit.json"
	// LockName is flock(2)ed by the shim for as long as it lives.
	LockName = "shim.lock"
)

// maxSunPath is the room for a socket path in sockaddr_un (with its NUL).
const maxSunPath = 107

// Listen creates the unix socket at path. Paths longer than sockaddr_un
// allows are reached through /proc/self/fd of their directory.
func Listen(path string) (*net.UnixListener, error) {
	var l *net.UnixListener
	err := shortPath(path, func(p string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false) // the shim removes it by its real path
	return l, nil
}

// Dial connects to the unix socket at path (any length).
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var c net.Conn
	err := shortPath(path, func(p string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

func shortPath(path string, fn func(string) error) error {
	if len(path) <= maxSunPath {
		return fn(path)
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(path))
}
