package oci

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// maxHostname is the kernel's HOST_NAME_MAX (also the domain name's).
const maxHostname = 64

// Spec builds c's OCI runtime spec with Docker's defaults. Bad settings
// are errdefs.ErrInvalid, with a message naming the setting. It reads the
// container's /etc/passwd and /etc/group (see ResolveUser) and, for a
// privileged container, lists the host's /dev.
func Spec(c Config) (*specs.Spec, error) {
	return buildSpec(c, probeHost())
}

// buildSpec is Spec on the given host facts, following the order of
// moby's createSpec where it matters: capabilities before the seccomp
// profile (whose rules depend on them), mounts last.
func buildSpec(c Config, h *host) (*specs.Spec, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	env, err := environment(c)
	if err != nil {
		return nil, err
	}
	usr, err := ResolveUser(c.Rootfs, c.User, c.AdditionalGroups)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(c.Rlimits, h)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(h, c.CapAdd, c.CapDrop, c.Privileged)
	if err != nil {
		return nil, err
	}
	ns, err := namespaces(c, h)
	if err != nil {
		return nil, err
	}
	sc, err := sysctls(c)
	if err != nil {
		return nil, err
	}
	cwd := c.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cgroupPath := c.CgroupPath
	if cgroupPath == "" {
		cgroupPath = "/skiff/" + c.ID
	}
	oom := c.Resources.OOMScoreAdj

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: c.Rootfs, Readonly: c.ReadOnlyRootfs},
		Process: &specs.Process{
			Terminal: c.Terminal,
			User:     usr,
			Args:     slices.Clone(c.Args),
			Env:      env,
			Cwd:      path.Clean(cwd),
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: slices.Clone(caps),
				Permitted: slices.Clone(caps),
			},
			Rlimits:         rl,
			NoNewPrivileges: c.NoNewPrivileges,
			OOMScoreAdj:     &oom,
		},
		Linux: &specs.Linux{
			Sysctl:        sc,
			Resources:     &specs.LinuxResources{Devices: defaultDeviceRules()},
			CgroupsPath:   cgroupPath,
			Namespaces:    ns,
			MaskedPaths:   defaultMaskedPaths(h),
			ReadonlyPaths: defaultReadonlyPaths(),
		},
	}
	if c.UTSNS != NamespaceHost {
		s.Hostname, s.Domainname = c.Hostname, c.Domainname
	}
	if err := setResources(s, c.Resources, h); err != nil {
		return nil, err
	}
	if c.Privileged {
		devs, err := h.devices()
		if err != nil {
			return nil, fmt.Errorf("list the host's devices for a privileged container: %w", err)
		}
		s.Linux.Devices = devs
		s.Linux.Resources.Devices = privilegedDeviceRules()
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if !c.Privileged && !c.SeccompUnconfined {
		if s.Linux.Seccomp, err = defaultSeccomp(s); err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
	}
	if err := setMounts(s, c, h); err != nil {
		return nil, err
	}
	return s, nil
}

// checkConfig checks the settings the other steps do not.
func checkConfig(c Config) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalid)...)
	}
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, "/\x00") || c.ID == "." || c.ID == "..":
		return invalid("container id %q: want a non-empty name without slashes", c.ID)
	case !path.IsAbs(c.Rootfs) || strings.ContainsRune(c.Rootfs, 0):
		return invalid("rootfs %q is not an absolute path", c.Rootfs)
	case len(c.Args) == 0 || c.Args[0] == "":
		return invalid("no command specified")
	case c.Cwd != "" && !path.IsAbs(c.Cwd):
		return invalid("working directory %q is not an absolute path", c.Cwd)
	case c.CgroupPath != "" && (!path.IsAbs(c.CgroupPath) || path.Clean(c.CgroupPath) != c.CgroupPath || c.CgroupPath == "/"):
		return invalid("cgroup path %q: want a clean absolute path below /", c.CgroupPath)
	case c.ShmSize < 0:
		return invalid("shm size %d is negative", c.ShmSize)
	case len(c.Hostname) > maxHostname || len(c.Domainname) > maxHostname:
		return invalid("hostname or domain name longer than %d bytes", maxHostname)
	case c.Resources.OOMScoreAdj < -1000 || c.Resources.OOMScoreAdj > 1000:
		return invalid("oom score adj %d: the range is -1000 to 1000", c.Resources.OOMScoreAdj)
	}
	for _, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			return invalid("command argument %q contains a NUL byte", a)
		}
	}
	return nil
}

// environment is Docker's: PATH, HOSTNAME and (with a terminal)
// TERM=xterm, then c.Env over them. A variable keeps the position where
// it first appears and the value it is given last; a bare KEY unsets it.
func environment(c Config) ([]string, error) {
	base := []string{"PATH=" + DefaultPath, "HOSTNAME=" + c.Hostname}
	if c.Terminal {
		base = append(base, "TERM=xterm")
	}
	var order []string
	listed := map[string]bool{}
	vars := map[string]string{}
	for _, e := range append(base, c.Env...) {
		k, _, set := strings.Cut(e, "=")
		if k == "" || strings.ContainsRune(e, 0) {
			return nil, fmt.Errorf("environment variable %q: want KEY=VALUE without NUL bytes: %w", e, errdefs.ErrInvalid)
		}
		if !listed[k] {
			listed[k] = true
			order = append(order, k)
		}
		if set {
			vars[k] = e
		} else {
			delete(vars, k)
		}
	}
	env := make([]string, 0, len(vars))
	for _, k := range order {
		if e, ok := vars[k]; ok {
			env = append(env, e)
		}
	}
	return env, nil
}
