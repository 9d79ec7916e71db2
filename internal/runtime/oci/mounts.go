package oci

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// defaultMounts are Docker's default mounts, in Docker's order. /dev/shm
// gets its size when kept.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// defaultMaskedPaths and defaultReadonlyPaths are Docker's current lists.
func defaultMaskedPaths(h *host) []string {
	return append([]string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}, h.maskedExtra...)
}

func defaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// setMounts fills s.Mounts (and the root propagation a shared or slave
// bind needs) as Docker's withMounts does: the caller's mounts replace the
// defaults at the same destination (all of /dev's if they mount /dev),
// come after the defaults sorted by depth, and a read-only rootfs makes
// the remaining defaults read-only too.
func setMounts(s *specs.Spec, c Config, h *host) error {
	own, err := containerMounts(c, h)
	if err != nil {
		return err
	}
	mine := make(map[string]bool, len(own))
	for _, m := range own {
		mine[m.Destination] = true
	}
	shm := c.ShmSize
	if shm == 0 {
		shm = DefaultShmSize
	}
	var mounts []specs.Mount
	for _, m := range defaultMounts() {
		if mine[m.Destination] || mine["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if m.Destination == "/dev/shm" {
			m.Options = append(m.Options, "size="+strconv.FormatInt(shm, 10))
		}
		mounts = append(mounts, m)
	}
	for _, m := range own {
		mounts = append(mounts, m)
		if m.Type != "bind" {
			continue
		}
		switch propagation(m.Options) {
		case "shared", "rshared":
			if r := s.Linux.RootfsPropagation; r != "shared" && r != "rshared" {
				s.Linux.RootfsPropagation = "shared"
			}
		case "slave", "rslave":
			if r := s.Linux.RootfsPropagation; r == "" || r == "private" || r == "rprivate" {
				s.Linux.RootfsPropagation = "rslave"
			}
		}
	}

	if c.ReadOnlyRootfs {
		for i, m := range mounts {
			switch m.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
				continue
			}
			if !mine[m.Destination] && !slices.Contains(m.Options, "ro") {
				mounts[i].Options = append(m.Options, "ro")
			}
		}
	}
	if c.Privileged {
		for i, m := range mounts {
			// rw /sys, and writable cgroupfs like Docker's privileged default.
			if m.Destination == "/sys" || m.Type == "cgroup" {
				mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
	}
	s.Mounts = mounts
	return nil
}

// containerMounts are the caller's mounts, --tmpfs, the engine's network
// files and the host's /dev/shm (IPC host), validated and sorted by depth
// so that a parent is mounted before what is mounted inside it.
func containerMounts(c Config, h *host) ([]specs.Mount, error) {
	var out []specs.Mount
	seen := map[string]bool{}
	add := func(m specs.Mount) error {
		if seen[m.Destination] {
			return fmt.Errorf("duplicate mount point %s: %w", m.Destination, errdefs.ErrInvalid)
		}
		seen[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, m := range c.Mounts {
		dst, err := mountDestination(m.Destination)
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case "", "bind":
			if !path.IsAbs(m.Source) || strings.ContainsRune(m.Source, 0) {
				return nil, fmt.Errorf("mount %s: bind source %q is not an absolute path: %w", dst, m.Source, errdefs.ErrInvalid)
			}
			err = add(specs.Mount{Destination: dst, Type: "bind", Source: m.Source, Options: bindOptions(m.Options, m.ReadOnly, h.rro)})
		case "tmpfs":
			var opts []string
			if opts, err = tmpfsOptions(m.Options, m.ReadOnly); err != nil {
				return nil, fmt.Errorf("mount %s: %w", dst, err)
			}
			err = add(specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			err = fmt.Errorf("mount %s: type %q is not bind or tmpfs: %w", dst, m.Type, errdefs.ErrInvalid)
		}
		if err != nil {
			return nil, err
		}
	}
	tmpfs := make([]string, 0, len(c.Tmpfs))
	for p := range c.Tmpfs {
		tmpfs = append(tmpfs, p)
	}
	sort.Strings(tmpfs)
	for _, p := range tmpfs {
		dst, err := mountDestination(p)
		if err != nil {
			return nil, err
		}
		opts, err := tmpfsOptions(strings.Split(c.Tmpfs[p], ","), false)
		if err != nil {
			return nil, fmt.Errorf("tmpfs %s: %w", dst, err)
		}
		if err := add(specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}); err != nil {
			return nil, err
		}
	}
	// The engine's files, unless the caller mounts something there.
	files := []struct{ src, dst string }{
		{c.ResolvConfPath, "/etc/resolv.conf"},
		{c.HostnamePath, "/etc/hostname"},
		{c.HostsPath, "/etc/hosts"},
	}
	for _, f := range files {
		if f.src == "" || seen[f.dst] {
			continue
		}
		if !path.IsAbs(f.src) || strings.ContainsRune(f.src, 0) {
			return nil, fmt.Errorf("%s source %q is not an absolute path: %w", f.dst, f.src, errdefs.ErrInvalid)
		}
		_ = add(specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: bindOptions(nil, c.ReadOnlyRootfs, h.rro)})
	}
	if c.IPCNS == NamespaceHost && !seen["/dev/shm"] {
		_ = add(specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: bindOptions(nil, false, h.rro)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Destination, "/") < strings.Count(out[j].Destination, "/")
	})
	return out, nil
}

func mountDestination(p string) (string, error) {
	if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("mount destination %q is not an absolute path: %w", p, errdefs.ErrInvalid)
	}
	p = path.Clean(p)
	if p == "/" {
		return "", fmt.Errorf("mount destination cannot be /: %w", errdefs.ErrInvalid)
	}
	return p, nil
}

// propagationModes are the mount propagation options.
var propagationModes = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}

// propagation is the last propagation mode in opts, or "".
func propagation(opts []string) string {
	for _, o := range slices.Backward(opts) {
		if slices.Contains(propagationModes, o) {
			return o
		}
	}
	return ""
}

// bindOptions are Docker's bind options: "rbind" (or "bind" if asked
// for), "rro" or "ro" when read-only (recursive if the kernel can), the
// caller's other options, then the propagation (rprivate by default).
func bindOptions(extra []string, readOnly, rro bool) []string {
	mode, prop, ro := "rbind", "rprivate", ""
	var rest []string
	for _, o := range extra {
		switch {
		case o == "bind" || o == "rbind":
			mode = o
		case o == "ro":
			readOnly = true
		case o == "rro":
			ro = o
		case o == "rw" || o == "":
		case slices.Contains(propagationModes, o):
			prop = o
		default:
			rest = append(rest, o)
		}
	}
	if readOnly && ro == "" {
		ro = "ro"
		if rro {
			ro = "rro"
		}
	}
	opts := []string{mode}
	if ro != "" {
		opts = append(opts, ro)
	}
	return append(append(opts, rest...), prop)
}

// tmpfsFlags maps each tmpfs flag option to the mount flag it sets or
// clears: of several options for one flag, the last wins.
var tmpfsFlags = map[string]string{
	"ro":            "rdonly",
	"rw":            "rdonly",
	"suid":          "nosuid",
	"nosuid":        "nosuid",
	"dev":           "nodev",
	"nodev":         "nodev",
	"exec":          "noexec",
	"noexec":        "noexec",
	"sync":          "sync",
	"async":         "sync",
	"dirsync":       "dirsync",
	"mand":          "mand",
	"nomand":        "mand",
	"atime":         "noatime",
	"noatime":       "noatime",
	"diratime":      "nodiratime",
	"nodiratime":    "nodiratime",
	"relatime":      "relatime",
	"norelatime":    "relatime",
	"strictatime":   "strictatime",
	"nostrictatime": "strictatime",
	"private":       "propagation",
	"rprivate":      "propagation",
	"shared":        "propagation",
	"rshared":       "propagation",
	"slave":         "propagation",
	"rslave":        "propagation",
	"unbindable":    "propagation",
	"runbindable":   "propagation",
}

// tmpfsData are the tmpfs options that take a value.
var tmpfsData = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}

// tmpfsOptions merges the caller's options over Docker's tmpfs defaults
// (noexec, nosuid, nodev, rprivate) the way moby's MergeTmpfsOptions does:
// the last option for each flag or data key wins, in the order given.
func tmpfsOptions(opts []string, readOnly bool) ([]string, error) {
	all := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if readOnly {
		all = append(all, "ro")
	}
	for _, o := range opts {
		if o = strings.TrimSpace(o); o != "" && o != "defaults" {
			all = append(all, o)
		}
	}
	var kept []string
	taken := map[string]bool{}
	for _, o := range slices.Backward(all) {
		key, ok := tmpfsFlags[o]
		if !ok {
			k, _, hasValue := strings.Cut(o, "=")
			if !hasValue || !slices.Contains(tmpfsData, k) {
				return nil, fmt.Errorf("invalid tmpfs option %q: %w", o, errdefs.ErrInvalid)
			}
			key = "=" + k
		}
		if !taken[key] {
			taken[key] = true
			kept = append(kept, o)
		}
	}
	slices.Reverse(kept)
	return kept, nil
}
