package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/errdefs"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ContainerCreate validates the request, resolves the image and records a
// new container. Nothing is started and nothing is left behind on error.
func (e *Engine) ContainerCreate(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	if req.Config == nil || req.Config.Image == "" {
		return container.CreateResponse{}, fmt.Errorf("no image given: %w", errdefs.ErrInvalid)
	}
	if name != "" && !validName.MatchString(name) {
		return container.CreateResponse{}, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalid)
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := e.validateHostConfig(hc); err != nil {
		return container.CreateResponse{}, err
	}
	img, err := e.opts.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return container.CreateResponse{}, fmt.Errorf("No such image: %s: %w", req.Config.Image, errdefs.ErrNotFound)
		}
		return container.CreateResponse{}, err
	}
	nets, err := e.requestedNetworks(hc, req.NetworkingConfig)
	if err != nil {
		return container.CreateResponse{}, err
	}
	path, args := command(req.Config, img.Config.Config.Entrypoint, img.Config.Config.Cmd)
	if path == "" {
		return container.CreateResponse{}, fmt.Errorf("no command specified: %w", errdefs.ErrInvalid)
	}

	c := &ctr{changed: make(chan struct{})}
	c.rec = record{
		Created:    e.now().UTC(),
		Image:      req.Config.Image,
		ImageID:    img.ID.String(),
		Path:       path,
		Args:       args,
		Config:     req.Config,
		HostConfig: hc,
		Networks:   nets,
		State:      container.State{Status: container.StateCreated},
	}
	if err := e.ctrs.reserve(strings.TrimPrefix(name, "/"), c); err != nil {
		return container.CreateResponse{}, err
	}
	for _, b := range hc.Binds {
		if v, _, _ := parseBind(b); v != "" && !strings.HasPrefix(v, "/") {
			if _, err := e.volumes.ensure(v, nil); err != nil {
				e.ctrs.remove(c)
				return container.CreateResponse{}, err
			}
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			if _, err := e.volumes.ensure(m.Source, nil); err != nil {
				e.ctrs.remove(c)
				return container.CreateResponse{}, err
			}
		}
	}
	c.mu.Lock()
	err = e.ctrs.save(c)
	c.mu.Unlock()
	if err != nil {
		e.ctrs.remove(c)
		_ = os.RemoveAll(e.ctrs.path(c.rec.ID))
		return container.CreateResponse{}, fmt.Errorf("create container: %w", err)
	}
	e.emit(events.ContainerEventType, events.ActionCreate, c)
	return container.CreateResponse{ID: c.rec.ID, Warnings: []string{}}, nil
}

// command is Docker's rule: the container's entrypoint replaces the
// image's (and then the image's cmd is dropped); the container's cmd
// replaces the image's.
func command(cfg *container.Config, imgEntrypoint, imgCmd []string) (string, []string) {
	entry, cmd := imgEntrypoint, imgCmd
	if cfg.Entrypoint != nil {
		entry = cfg.Entrypoint
		cmd = nil
		if len(entry) == 1 && entry[0] == "" {
			entry = nil
		}
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	all := append(append([]string{}, entry...), cmd...)
	if len(all) == 0 {
		return "", nil
	}
	return all[0], all[1:]
}

func (e *Engine) validateHostConfig(hc *container.HostConfig) error {
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure': %w", errdefs.ErrInvalid)
		}
	case container.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return fmt.Errorf("invalid restart policy: maximum retry count cannot be negative: %w", errdefs.ErrInvalid)
		}
	default:
		return fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped': %w", rp.Name, errdefs.ErrInvalid)
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != container.RestartPolicyDisabled {
		return fmt.Errorf("can't create 'AutoRemove' container with restart policy: %w", errdefs.ErrInvalid)
	}
	for p, bindings := range hc.PortBindings {
		if !p.IsValid() || p.Num() == 0 {
			return fmt.Errorf("invalid port specification: %q: %w", p.String(), errdefs.ErrInvalid)
		}
		switch p.Proto() {
		case network.TCP, network.UDP:
		default:
			return fmt.Errorf("invalid port specification: %q: protocol %s is not supported: %w", p.String(), p.Proto(), errdefs.ErrInvalid)
		}
		for _, b := range bindings {
			if b.HostPort == "" {
				continue
			}
			if _, err := parseHostPort(b.HostPort); err != nil {
				return err
			}
		}
	}
	for _, b := range hc.Binds {
		if _, _, err := parseBind(b); err != nil {
			return err
		}
	}
	for _, m := range hc.Mounts {
		if err := validateMount(m); err != nil {
			return err
		}
	}
	if hc.Memory != 0 && hc.Memory < 6<<20 {
		return fmt.Errorf("minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalid)
	}
	if hc.NanoCPUs < 0 {
		return fmt.Errorf("range of CPUs is from 0.01 to the number of CPUs available: %w", errdefs.ErrInvalid)
	}
	mode := string(hc.NetworkMode)
	if name, ok := strings.CutPrefix(mode, "container:"); ok && name == "" {
		return fmt.Errorf("invalid network mode %q: no container given: %w", mode, errdefs.ErrInvalid)
	}
	return nil
}

func parseHostPort(s string) (uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	n, err := strconv.ParseUint(lo, 10, 16)
	if err == nil && isRange {
		var m uint64
		m, err = strconv.ParseUint(hi, 10, 16)
		if err == nil && m < n {
			err = errors.New("range end before start")
		}
	}
	if err != nil {
		return 0, fmt.Errorf("invalid host port %q: %w", s, errdefs.ErrInvalid)
	}
	return uint16(n), nil
}

// parseBind splits a -v value: "volume:/path[:opts]" or "/host:/path[:opts]".
// src is the volume name or host path.
func parseBind(b string) (src string, opts bindOpts, err error) {
	parts := strings.Split(b, ":")
	bad := func(why string) (string, bindOpts, error) {
		return "", bindOpts{}, fmt.Errorf("invalid volume specification: '%s': %s: %w", b, why, errdefs.ErrInvalid)
	}
	switch len(parts) {
	case 1:
		// an anonymous volume: "/path"
		if !path.IsAbs(parts[0]) {
			return bad("invalid mount config for type \"volume\": invalid mount path: '" + parts[0] + "' mount path must be absolute")
		}
		return "", bindOpts{Target: parts[0]}, nil
	case 2, 3:
	default:
		return bad("too many colons")
	}
	src, opts.Target = parts[0], parts[1]
	if src == "" {
		return bad("empty source")
	}
	if !path.IsAbs(opts.Target) {
		return bad("invalid mount config for type \"bind\": invalid mount path: '" + opts.Target + "' mount path must be absolute")
	}
	if !path.IsAbs(src) && !validName.MatchString(src) {
		return bad("\"" + src + "\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				opts.ReadOnly = true
			case "rw", "z", "Z", "nocopy", "rprivate", "private", "rslave", "slave", "rshared", "shared", "delegated", "cached", "consistent":
				if o == "nocopy" {
					opts.NoCopy = true
				}
			default:
				return bad("invalid mode: " + o)
			}
		}
	}
	return src, opts, nil
}

type bindOpts struct {
	Target   string
	ReadOnly bool
	NoCopy   bool
}

func validateMount(m mount.Mount) error {
	if !path.IsAbs(m.Target) {
		return fmt.Errorf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute: %w", m.Type, m.Target, errdefs.ErrInvalid)
	}
	switch m.Type {
	case mount.TypeBind:
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", m.Source, errdefs.ErrInvalid)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalid)
		}
	case mount.TypeVolume:
		if m.Source != "" && !validName.MatchString(m.Source) {
			return fmt.Errorf("invalid volume name %q: %w", m.Source, errdefs.ErrInvalid)
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return fmt.Errorf("invalid mount config for type \"tmpfs\": source must not be specified: %w", errdefs.ErrInvalid)
		}
	default:
		return fmt.Errorf("invalid mount config: mount type %q is not supported: %w", m.Type, errdefs.ErrInvalid)
	}
	return nil
}

// requestedNetworks returns the networks a container joins, by name,
// with the user's endpoint settings.
func (e *Engine) requestedNetworks(hc *container.HostConfig, nc *network.NetworkingConfig) (map[string]*network.EndpointSettings, error) {
	mode := string(hc.NetworkMode)
	switch {
	case mode == "" || mode == "default":
		mode = defaultNetwork
		hc.NetworkMode = container.NetworkMode(mode)
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
		if len(hc.PortBindings) > 0 && mode != "none" {
			return nil, fmt.Errorf("conflicting options: port publishing and the container type network mode: %w", errdefs.ErrInvalid)
		}
		return map[string]*network.EndpointSettings{}, nil
	}
	if _, err := e.network(mode); err != nil {
		return nil, err
	}
	out := map[string]*network.EndpointSettings{}
	settings := &network.EndpointSettings{}
	if nc != nil {
		for name, s := range nc.EndpointsConfig {
			if s == nil {
				s = &network.EndpointSettings{}
			}
			n, err := e.network(name)
			if err != nil {
				return nil, err
			}
			if n.Name == mode {
				settings = s
				continue
			}
			out[n.Name] = s
		}
	}
	if settings.IPAMConfig != nil && settings.IPAMConfig.IPv4Address.IsValid() {
		if !settings.IPAMConfig.IPv4Address.Is4() {
			return nil, fmt.Errorf("invalid IPv4 address %s: %w", settings.IPAMConfig.IPv4Address, errdefs.ErrInvalid)
		}
	}
	out[mode] = settings
	return out, nil
}

var _ = netip.Addr{}
