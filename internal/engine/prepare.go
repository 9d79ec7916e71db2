package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/go-digest"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/runtime/oci"
)

type prepared struct {
	bundle string
}

// prepare mounts the rootfs, sets up the network and writes the OCI
// bundle. Each step appends its undo to undo.
func (e *Engine) prepare(ctx context.Context, c *ctr, undo *[]func()) (prepared, error) {
	id := c.rec.ID
	img, err := e.opts.Images.Resolve(ctx, c.rec.ImageID)
	if err != nil {
		return prepared{}, fmt.Errorf("image %s of container %s: %w", c.rec.Image, id[:12], err)
	}
	lowers, err := e.opts.Snapshots.Lowers(ctx, img.Layers, img.DiffIDs)
	if err != nil {
		return prepared{}, err
	}
	rootfs := e.ctrs.path(id, "rootfs")
	if err := snapshot.Mount(rootfs, lowers, e.ctrs.path(id, "upper"), e.ctrs.path(id, "work")); err != nil {
		return prepared{}, err
	}
	*undo = append(*undo, func() { e.releaseRootfs(c) })

	cfg := c.rec.Config
	icfg := img.Config.Config
	env := mergeEnv(icfg.Env, cfg.Env)
	workdir := cfg.WorkingDir
	if workdir == "" {
		workdir = icfg.WorkingDir
	}
	if workdir == "" {
		workdir = "/"
	}
	if err := mkdirIn(rootfs, workdir); err != nil {
		return prepared{}, err
	}
	user := cfg.User
	if user == "" {
		user = icfg.User
	}
	if cfg.StopSignal == "" && icfg.StopSignal != "" {
		cfg.StopSignal = icfg.StopSignal
	}

	netcfg, err := e.setupNetwork(ctx, c, undo)
	if err != nil {
		return prepared{}, err
	}
	mounts, err := e.mounts(c)
	if err != nil {
		return prepared{}, err
	}
	hc := c.rec.HostConfig
	res := oci.Resources{
		MemoryBytes:     hc.Memory,
		MemorySwapBytes: hc.MemorySwap,
		CPUShares:       uint64(max(hc.CPUShares, 0)),
		CPUQuota:        hc.CPUQuota,
		CPUPeriod:       uint64(max(hc.CPUPeriod, 0)),
		CpusetCpus:      hc.CpusetCpus,
		CpusetMems:      hc.CpusetMems,
		OOMScoreAdj:     hc.OomScoreAdj,
	}
	if hc.PidsLimit != nil {
		res.PidsLimit = *hc.PidsLimit
	}
	if hc.NanoCPUs > 0 {
		res.CPUQuota, res.CPUPeriod = oci.NanoCPUs(hc.NanoCPUs)
	}
	noNewPrivs := true
	seccompUnconfined := false
	for _, o := range hc.SecurityOpt {
		switch {
		case o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true":
			noNewPrivs = true
		case o == "no-new-privileges:false" || o == "no-new-privileges=false":
			noNewPrivs = false
		case o == "seccomp=unconfined" || o == "seccomp:unconfined":
			seccompUnconfined = true
		case strings.HasPrefix(o, "label") || strings.HasPrefix(o, "apparmor"):
		default:
			return prepared{}, fmt.Errorf("invalid --security-opt: %q: %w", o, errdefs.ErrInvalid)
		}
	}
	spec, err := oci.Spec(oci.Config{
		ID:                c.rec.ID,
		Rootfs:            rootfs,
		ReadOnlyRootfs:    hc.ReadonlyRootfs,
		Args:              append([]string{c.rec.Path}, c.rec.Args...),
		Env:               env,
		Cwd:               workdir,
		Terminal:          cfg.Tty,
		User:              user,
		AdditionalGroups:  hc.GroupAdd,
		Hostname:          netcfg.hostname,
		Domainname:        cfg.Domainname,
		CapAdd:            hc.CapAdd,
		CapDrop:           hc.CapDrop,
		Privileged:        hc.Privileged,
		NoNewPrivileges:   noNewPrivs && !hc.Privileged,
		SeccompUnconfined: seccompUnconfined,
		Mounts:            mounts,
		HostsPath:         netcfg.hostsPath,
		ResolvConfPath:    netcfg.resolvPath,
		HostnamePath:      netcfg.hostnamePath,
		NetNS:             netcfg.netns,
		IPCNS:             ipcNS(hc),
		PIDNS:             pidNS(hc),
		UTSNS:             utsNS(hc),
		CgroupPath:        "/skiff/" + c.rec.ID,
		Resources:         res,
		Sysctls:           hc.Sysctls,
		ShmSize:           hc.ShmSize,
		Tmpfs:             hc.Tmpfs,
	})
	if err != nil {
		return prepared{}, err
	}
	bundle := e.ctrs.path(id, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return prepared{}, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return prepared{}, err
	}
	if err := atomicfile.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return prepared{}, err
	}
	return prepared{bundle: bundle}, nil
}

func ipcNS(hc *container.HostConfig) string {
	if hc.IpcMode.IsHost() {
		return "host"
	}
	return ""
}

func pidNS(hc *container.HostConfig) string {
	if hc.PidMode.IsHost() {
		return "host"
	}
	return ""
}

func utsNS(hc *container.HostConfig) string {
	if hc.UTSMode.IsHost() {
		return "host"
	}
	return ""
}

// releaseRootfs unmounts the container's root filesystem (the upper
// directory stays: it is the container's state).
func (e *Engine) releaseRootfs(c *ctr) {
	if err := snapshot.Unmount(e.ctrs.path(c.rec.ID, "rootfs")); err != nil {
		e.log.Warn("unmount rootfs", "id", c.rec.ID, "err", err)
	}
}

// mergeEnv is Docker's: the image's environment, then the container's,
// later values replacing earlier ones of the same name, order kept.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range over {
		k, _, hasValue := strings.Cut(kv, "=")
		if !hasValue {
			continue // "-e NAME" without a value in the client's env
		}
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// mkdirIn creates dir inside rootfs without following symlinks out of it.
func mkdirIn(rootfs, dir string) error {
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}

// mounts turns binds, --mount and --tmpfs into runtime mounts.
func (e *Engine) mounts(c *ctr) ([]oci.Mount, error) {
	hc := c.rec.HostConfig
	var out []oci.Mount
	for _, b := range hc.Binds {
		src, o, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		m := oci.Mount{Destination: o.Target, Type: "bind", ReadOnly: o.ReadOnly}
		switch {
		case src == "":
			v, err := e.volumes.ensure(anonymousVolume(c.rec.ID, o.Target), map[string]string{anonymousLabel: c.rec.ID})
			if err != nil {
				return nil, err
			}
			m.Source = v.dataDir()
		case strings.HasPrefix(src, "/"):
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				// Docker creates a missing bind source directory.
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("bind source %s: %w", src, err)
				}
			}
			m.Source = src
		default:
			v, err := e.volumes.ensure(src, nil)
			if err != nil {
				return nil, err
			}
			if !o.NoCopy {
				e.volumes.copyUp(v, e.ctrs.path(c.rec.ID, "rootfs"), o.Target)
			}
			m.Source = v.dataDir()
		}
		out = append(out, m)
	}
	for _, mt := range hc.Mounts {
		m := oci.Mount{Destination: mt.Target, ReadOnly: mt.ReadOnly}
		switch mt.Type {
		case mount.TypeBind:
			m.Type, m.Source = "bind", mt.Source
		case mount.TypeVolume:
			name := mt.Source
			if name == "" {
				name = anonymousVolume(c.rec.ID, mt.Target)
			}
			v, err := e.volumes.ensure(name, nil)
			if err != nil {
				return nil, err
			}
			m.Type, m.Source = "bind", v.dataDir()
		case mount.TypeTmpfs:
			m.Type = "tmpfs"
			if mt.TmpfsOptions != nil && mt.TmpfsOptions.SizeBytes > 0 {
				m.Options = append(m.Options, fmt.Sprintf("size=%d", mt.TmpfsOptions.SizeBytes))
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func anonymousVolume(containerID, target string) string {
	return digest.FromString(containerID + target).Encoded()
}
