package oci

import (
	"fmt"
	"maps"
	"path"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// namespaces are Docker's: new mount, network, UTS, PID and IPC
// namespaces, each dropped for "host" or joined by path, and a private
// cgroup namespace on a pure cgroup v2 host. Never a user namespace.
func namespaces(c Config, h *host) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, n := range []struct {
		typ  specs.LinuxNamespaceType
		name string
		mode string
	}{
		{specs.NetworkNamespace, "network", c.NetNS},
		{specs.UTSNamespace, "uts", c.UTSNS},
		{specs.PIDNamespace, "pid", c.PIDNS},
		{specs.IPCNamespace, "ipc", c.IPCNS},
	} {
		switch {
		case n.mode == NamespaceHost:
		case n.mode == NamespaceNew:
			ns = append(ns, specs.LinuxNamespace{Type: n.typ})
		case path.IsAbs(n.mode) && !strings.ContainsRune(n.mode, 0):
			ns = append(ns, specs.LinuxNamespace{Type: n.typ, Path: n.mode})
		default:
			return nil, fmt.Errorf("%s namespace %q: want %q, %q or an absolute path: %w",
				n.name, n.mode, NamespaceNew, NamespaceHost, errdefs.ErrInvalid)
		}
	}
	if h.cgroup2 {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns, nil
}

// ipcSysctls are the kernel.* sysctls that belong to the IPC namespace.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// sysctls merges Docker's network defaults (own network namespace only)
// with the caller's, which win. Like runc, it accepts only sysctls of a
// namespace the container has its own of (or joins): IPC ones without
// the host IPC namespace, net.* without the host network namespace,
// kernel.domainname without the host UTS namespace.
func sysctls(c Config) (map[string]string, error) {
	out := map[string]string{}
	if c.NetNS == NamespaceNew {
		maps.Copy(out, DefaultNetworkSysctls())
	}
	for k, v := range c.Sysctls {
		if err := checkSysctl(c, k, v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func checkSysctl(c Config, key, value string) error {
	if key == "" || strings.ContainsAny(key, "= \t\n\x00") || strings.ContainsRune(value, 0) {
		return fmt.Errorf("sysctl %q: malformed: %w", key, errdefs.ErrInvalid)
	}
	k := key
	// "net/ipv4/ip_forward" is the same as "net.ipv4.ip_forward".
	if i := strings.IndexAny(k, "./"); i >= 0 && k[i] == '/' {
		k = strings.Map(func(r rune) rune {
			switch r {
			case '/':
				return '.'
			case '.':
				return '/'
			}
			return r
		}, k)
	}
	var ns, mode string
	switch {
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		ns, mode = "ipc", c.IPCNS
	case strings.HasPrefix(k, "net."):
		ns, mode = "network", c.NetNS
	case k == "kernel.domainname":
		ns, mode = "uts", c.UTSNS
	case k == "kernel.hostname":
		return fmt.Errorf("sysctl %q: set the hostname instead: %w", key, errdefs.ErrInvalid)
	default:
		return fmt.Errorf("sysctl %q is not namespaced (only IPC, network and kernel.domainname sysctls are): %w", key, errdefs.ErrInvalid)
	}
	if mode == NamespaceHost {
		return fmt.Errorf("sysctl %q is not allowed in the host's %s namespace: %w", key, ns, errdefs.ErrInvalid)
	}
	return nil
}
