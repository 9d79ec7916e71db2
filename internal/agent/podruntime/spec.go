package podruntime

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/oci"
)

// Seccomp profiles for ContainerConfig.SeccompProfile.
const (
	// SeccompUnconfined (or "") runs without a filter: the kubelet's
	// default when a pod asks for nothing (seccompDefault off).
	SeccompUnconfined = "Unconfined"
	// SeccompRuntimeDefault is Docker's (and containerd's) default profile.
	SeccompRuntimeDefault = "RuntimeDefault"
)

// containerArgs applies Kubernetes' rules for command and args over the
// image's ENTRYPOINT and CMD: a command replaces both; args alone replace
// CMD only.
func containerArgs(command, args []string, img ocispec.ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(slices.Clone(command), args...)
	case len(args) > 0:
		out = append(slices.Clone(img.Entrypoint), args...)
	default:
		out = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, fmt.Errorf("no command specified: the container has no command and the image no entrypoint or cmd: %w", errdefs.ErrInvalid)
	}
	return out, nil
}

// userSpec is the user the container runs as, in oci.Config.User's
// syntax: runAsUser (and runAsGroup) win over the image's USER. With
// runAsNonRoot it refuses uid 0 and image users it cannot verify, with
// the kubelet's messages. pod names the pod in those messages
// (name_namespace(uid), as the kubelet formats it).
func userSpec(c *ContainerConfig, imageUser, pod string) (string, error) {
	var user string
	if c.User != nil {
		if *c.User < 0 || *c.User > 1<<31-1 {
			return "", fmt.Errorf("runAsUser %d is out of range: %w", *c.User, errdefs.ErrInvalid)
		}
		user = strconv.FormatInt(*c.User, 10)
	} else {
		user, _, _ = strings.Cut(imageUser, ":")
	}
	if c.Group != nil {
		if *c.Group < 0 || *c.Group > 1<<31-1 {
			return "", fmt.Errorf("runAsGroup %d is out of range: %w", *c.Group, errdefs.ErrInvalid)
		}
		if user == "" {
			user = "0"
		}
		user += ":" + strconv.FormatInt(*c.Group, 10)
	} else if c.User == nil {
		user = imageUser
	}
	if !c.RunAsNonRoot {
		return user, nil
	}
	if c.User != nil {
		if *c.User == 0 {
			return "", fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s): %w", pod, c.Name, errdefs.ErrInvalid)
		}
		return user, nil
	}
	name, _, _ := strings.Cut(imageUser, ":")
	uid, err := strconv.ParseUint(name, 10, 32)
	switch {
	case name == "" || err == nil && uid == 0:
		return "", fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s): %w", pod, c.Name, errdefs.ErrInvalid)
	case err != nil:
		return "", fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s): %w", name, pod, c.Name, errdefs.ErrInvalid)
	}
	return user, nil
}

// mergeEnv is the image's environment with the container's over it: a
// variable keeps its place and takes the container's value.
func mergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	index := make(map[string]int, len(out))
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// stopSignal parses an image's STOPSIGNAL ("SIGQUIT", "QUIT", "3");
// SIGTERM when empty.
func stopSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("stop signal %q: %w", s, errdefs.ErrInvalid)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("stop signal %q: %w", s, errdefs.ErrInvalid)
}

// specInput is what a container's OCI configuration is made from.
type specInput struct {
	id, rootfs string
	c          *ContainerConfig
	image      ocispec.ImageConfig
	sb         Sandbox
	// termLog is the host file behind c.TerminationMessagePath.
	termLog string
	// pidNS is the PID namespace to join ("" for a new one).
	pidNS string
}

// ociConfig turns a container of a pod into package oci's Config.
func ociConfig(in specInput) (oci.Config, error) {
	c, sb := in.c, in.sb
	pod := sb.Name + "_" + sb.Namespace + "(" + sb.PodUID + ")"
	args, err := containerArgs(c.Command, c.Args, in.image)
	if err != nil {
		return oci.Config{}, err
	}
	user, err := userSpec(c, in.image.User, pod)
	if err != nil {
		return oci.Config{}, err
	}
	cwd := c.WorkingDir
	if cwd == "" {
		cwd = in.image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return oci.Config{}, fmt.Errorf("working directory %q is not absolute: %w", cwd, errdefs.ErrInvalid)
	}
	var seccompUnconfined bool
	switch c.SeccompProfile {
	case "", SeccompUnconfined:
		seccompUnconfined = true
	case SeccompRuntimeDefault:
	default:
		return oci.Config{}, fmt.Errorf("seccomp profile %q: only %s and %s are supported: %w", c.SeccompProfile, SeccompRuntimeDefault, SeccompUnconfined, errdefs.ErrInvalid)
	}
	groups := make([]string, 0, len(c.SupplementalGroups))
	for _, g := range c.SupplementalGroups {
		if g < 0 || g > 1<<31-1 {
			return oci.Config{}, fmt.Errorf("supplemental group %d is out of range: %w", g, errdefs.ErrInvalid)
		}
		groups = append(groups, strconv.FormatInt(g, 10))
	}
	mounts := slices.Clone(c.Mounts)
	if sb.ShmPath != "" {
		mounts = append(mounts, oci.Mount{Destination: "/dev/shm", Source: sb.ShmPath, Type: "bind"})
	}
	if c.TerminationMessagePath != "" {
		mounts = append(mounts, oci.Mount{Destination: c.TerminationMessagePath, Source: in.termLog, Type: "bind"})
	}
	ns := func(p string) string {
		if p == "" {
			return oci.NamespaceHost
		}
		return p
	}
	pidNS := in.pidNS
	if sb.HostPID {
		pidNS = oci.NamespaceHost
	}
	return oci.Config{
		ID:                in.id,
		Rootfs:            in.rootfs,
		ReadOnlyRootfs:    c.ReadOnlyRootfs,
		Args:              args,
		Env:               mergeEnv(in.image.Env, c.Env),
		Cwd:               cwd,
		Terminal:          c.TTY,
		User:              user,
		AdditionalGroups:  groups,
		Hostname:          sb.Hostname,
		CapAdd:            c.CapAdd,
		CapDrop:           c.CapDrop,
		Privileged:        c.Privileged,
		NoNewPrivileges:   !c.Privileged && c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation,
		SeccompUnconfined: seccompUnconfined,
		Mounts:            mounts,
		HostsPath:         sb.HostsPath,
		ResolvConfPath:    sb.ResolvPath,
		HostnamePath:      sb.HostnamePath,
		NetNS:             ns(sb.NetNS),
		IPCNS:             ns(sb.IPCNS),
		UTSNS:             ns(sb.UTSNS),
		PIDNS:             pidNS,
		CgroupPath:        podCgroupParent(sb.PodUID) + "/" + in.id,
		Resources: oci.Resources{
			MemoryBytes: c.MemoryLimit,
			CPUShares:   c.CPUShares,
			CPUQuota:    c.CPUQuota,
			CPUPeriod:   c.CPUPeriod,
			OOMScoreAdj: c.OOMScoreAdj,
		},
		Sysctls: sb.Sysctls,
	}, nil
}
