package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// ContainerInspect returns the container as `docker inspect` shows it.
func (e *Engine) ContainerInspect(ctx context.Context, nameOrID string, size bool) (container.InspectResponse, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.rec
	st := r.State
	if st.StartedAt == "" {
		st.StartedAt = "0001-01-01T00:00:00Z"
	}
	if st.FinishedAt == "" {
		st.FinishedAt = "0001-01-01T00:00:00Z"
	}
	out := container.InspectResponse{
		ID:             r.ID,
		Created:        r.Created.Format(time.RFC3339Nano),
		Path:           r.Path,
		Args:           orEmptySlice(r.Args),
		State:          &st,
		Image:          r.ImageID,
		ResolvConfPath: e.ctrs.path(r.ID, "resolv.conf"),
		HostnamePath:   e.ctrs.path(r.ID, "hostname"),
		HostsPath:      e.ctrs.path(r.ID, "hosts"),
		LogPath:        e.ctrs.path(r.ID, "container.log"),
		Name:           "/" + r.Name,
		RestartCount:   r.RestartCount,
		Driver:         "overlayfs",
		Platform:       "linux",
		ExecIDs:        e.execs.forContainer(r.ID),
		HostConfig:     r.HostConfig,
		Config:         r.Config,
		Mounts:         e.mountPoints(c),
		NetworkSettings: &container.NetworkSettings{
			SandboxKey: e.sandboxKey(c),
			Ports:      e.portMap(c),
			Networks:   orEmptyNets(r.Networks),
		},
	}
	if size {
		rw := dirSize(e.ctrs.path(r.ID, "upper"))
		out.SizeRw = &rw
	}
	return out, nil
}

func orEmptySlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyNets(m map[string]*network.EndpointSettings) map[string]*network.EndpointSettings {
	if m == nil {
		return map[string]*network.EndpointSettings{}
	}
	return m
}

func (e *Engine) sandboxKey(c *ctr) string {
	mode := string(c.rec.HostConfig.NetworkMode)
	if !c.rec.State.Running || mode == "host" || strings.HasPrefix(mode, "container:") {
		return ""
	}
	return e.netnsPath(c.rec.ID)
}

// portMap lists exposed ports, with their bindings while running.
func (e *Engine) portMap(c *ctr) network.PortMap {
	out := network.PortMap{}
	for p := range c.rec.Config.ExposedPorts {
		out[p] = nil
	}
	for p, b := range c.rec.Ports {
		out[p] = b
	}
	return out
}

func (e *Engine) mountPoints(c *ctr) []container.MountPoint {
	out := []container.MountPoint{}
	for _, b := range c.rec.HostConfig.Binds {
		src, o, err := parseBind(b)
		if err != nil {
			continue
		}
		mp := container.MountPoint{Destination: o.Target, RW: !o.ReadOnly, Mode: map[bool]string{true: "ro", false: ""}[o.ReadOnly]}
		switch {
		case src == "":
			name := anonymousVolume(c.rec.ID, o.Target)
			mp.Type, mp.Name, mp.Driver, mp.Source = "volume", name, "local", e.volumes.dir+"/"+name+"/_data"
		case strings.HasPrefix(src, "/"):
			mp.Type, mp.Source, mp.Propagation = "bind", src, "rprivate"
		default:
			mp.Type, mp.Name, mp.Driver, mp.Source = "volume", src, "local", e.volumes.dir+"/"+src+"/_data"
		}
		out = append(out, mp)
	}
	for _, m := range c.rec.HostConfig.Mounts {
		out = append(out, container.MountPoint{Type: m.Type, Name: m.Source, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly})
	}
	return out
}

// ContainerList lists containers, newest first, like `docker ps`.
func (e *Engine) ContainerList(ctx context.Context, opts dockerapi.ListOptions) ([]container.Summary, error) {
	all := e.ctrs.all()
	slices.SortFunc(all, func(a, b *ctr) int { return b.rec.Created.Compare(a.rec.Created) })
	out := []container.Summary{}
	for _, c := range all {
		c.mu.Lock()
		s, ok := e.summary(c, opts)
		c.mu.Unlock()
		if !ok {
			continue
		}
		out = append(out, s)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

func (e *Engine) summary(c *ctr, opts dockerapi.ListOptions) (container.Summary, bool) {
	r := &c.rec
	if !opts.All && !r.State.Running && opts.Limit <= 0 && len(opts.Filters["status"]) == 0 {
		return container.Summary{}, false
	}
	if !matchContainer(r, opts.Filters) {
		return container.Summary{}, false
	}
	s := container.Summary{
		ID:      r.ID,
		Names:   []string{"/" + r.Name},
		Image:   r.Image,
		ImageID: r.ImageID,
		Command: strings.Join(append([]string{r.Path}, r.Args...), " "),
		Created: r.Created.Unix(),
		Labels:  orEmpty(r.Config.Labels),
		State:   r.State.Status,
		Status:  statusText(r.State, r.Created, e.now()),
		Mounts:  e.mountPoints(c),
		NetworkSettings: &container.NetworkSettingsSummary{
			Networks: orEmptyNets(r.Networks),
		},
	}
	s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
	for p, bs := range e.portMap(c) {
		if len(bs) == 0 {
			s.Ports = append(s.Ports, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			s.Ports = append(s.Ports, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	if s.Ports == nil {
		s.Ports = []container.PortSummary{}
	}
	if opts.Size {
		s.SizeRw = dirSize(e.ctrs.path(r.ID, "upper"))
	}
	return s, true
}

// statusText is docker ps's STATUS column.
func statusText(st container.State, created, now time.Time) string {
	ago := func(ts string) string {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return ""
		}
		return units.HumanDuration(now.Sub(t))
	}
	switch {
	case st.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	case st.Running:
		return "Up " + ago(st.StartedAt)
	case st.Status == container.StateCreated:
		return "Created"
	case st.Status == container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	}
	return string(st.Status)
}

// matchContainer applies docker ps filters.
func matchContainer(r *record, f dockerapi.Filters) bool {
	for key, values := range f {
		if len(values) == 0 {
			continue
		}
		if key == "label" {
			if !matchLabels(r.Config.Labels, values) {
				return false
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "id":
				ok = strings.HasPrefix(r.ID, v)
			case "name":
				ok = containsFold(r.Name, strings.TrimPrefix(v, "/"))
			case "status":
				ok = string(r.State.Status) == v
			case "exited":
				ok = !r.State.Running && r.State.Status == container.StateExited && strconv.Itoa(r.State.ExitCode) == v
			case "ancestor":
				ok = r.Image == v || r.ImageID == v || strings.HasPrefix(strings.TrimPrefix(r.ImageID, "sha256:"), v)
			case "network":
				_, ok = r.Networks[v]
			default:
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchLabels: every "k" or "k=v" filter must match.
func matchLabels(labels map[string]string, filters []string) bool {
	for _, l := range filters {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// ContainerRename renames a container.
func (e *Engine) ContainerRename(ctx context.Context, nameOrID, newName string) error {
	if !validName.MatchString(newName) {
		return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", newName, errdefs.ErrInvalid)
	}
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := e.ctrs.rename(c, strings.TrimPrefix(newName, "/")); err != nil {
		return err
	}
	if err := e.ctrs.save(c); err != nil {
		return err
	}
	e.emit(events.ContainerEventType, events.ActionRename, c)
	return nil
}

// ContainerPrune removes stopped containers.
func (e *Engine) ContainerPrune(ctx context.Context, filters dockerapi.Filters) (container.PruneReport, error) {
	var rep container.PruneReport
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		r := c.rec
		c.mu.Unlock()
		if r.State.Running || r.State.Restarting || !matchLabels(r.Config.Labels, filters["label"]) {
			continue
		}
		size := dirSize(e.ctrs.path(r.ID, "upper"))
		if err := e.ContainerRemove(ctx, r.ID, dockerapi.RemoveOptions{}); err == nil {
			rep.ContainersDeleted = append(rep.ContainersDeleted, r.ID)
			rep.SpaceReclaimed += uint64(size)
		}
	}
	return rep, nil
}

var _ = netip.Addr{}
