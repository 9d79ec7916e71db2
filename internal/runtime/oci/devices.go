package oci

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDeviceRules is Docker's device cgroup: deny everything, allow the
// standard nodes (zero, null, urandom, random, tty, console) and deny fuse
// explicitly. libcontainer's specconv appends its own AllowedDevices after
// these (mknod of any node, /dev/full, /dev/pts/*, /dev/ptmx, /dev/net/tun)
// and creates /dev/{null,zero,full,random,urandom,tty}; /dev/ptmx, /dev/pts
// and /dev/console come from the devpts mount and the terminal. So the
// spec lists no device nodes of its own unless privileged.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(allow bool, major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule(true, 1, 5),     // /dev/zero
		rule(true, 1, 3),     // /dev/null
		rule(true, 1, 9),     // /dev/urandom
		rule(true, 1, 8),     // /dev/random
		rule(true, 5, 0),     // /dev/tty
		rule(true, 5, 1),     // /dev/console
		rule(false, 10, 229), // /dev/fuse
	}
}

// privilegedDeviceRules lets a privileged container use every device.
func privilegedDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}

// hostDevices lists the device nodes under the host's /dev the way
// containerd's oci.HostDevices does for docker --privileged: character and
// block devices, skipping /dev/pts, /dev/shm, /dev/fd, /dev/mqueue, the
// lxc/udev private directories and /dev/console (the container's console
// is its terminal).
func hostDevices() ([]specs.LinuxDevice, error) {
	return devicesUnder("/dev")
}

func devicesUnder(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := devicesUnder(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if e.Name() == "console" {
			continue
		}
		d, ok, err := deviceAt(p)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// deviceAt describes the device node at path; ok is false if it is not a
// character or block device (or vanished).
func deviceAt(path string) (d specs.LinuxDevice, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return d, false, nil
		}
		return d, false, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		d.Type = "c"
	case unix.S_IFBLK:
		d.Type = "b"
	default:
		return d, false, nil
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	d.Path = path
	d.Major = int64(unix.Major(st.Rdev))
	d.Minor = int64(unix.Minor(st.Rdev))
	d.FileMode = &mode
	d.UID = &uid
	d.GID = &gid
	return d, true, nil
}
