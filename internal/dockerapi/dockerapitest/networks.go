package dockerapitest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

type fakeNetwork struct {
	net        network.Network
	builtin    bool
	containers map[string]network.EndpointResource // by container ID
	nextIP     int
}

// addNetwork records a network; b.mu is held (or b is not shared yet).
func (b *Backend) addNetwork(req network.CreateRequest, builtin bool) *fakeNetwork {
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	b.seq++
	var ipam network.IPAM
	if driver == "bridge" {
		sub := netip.MustParsePrefix(fmt.Sprintf("172.%d.0.0/16", 16+b.seq%16))
		ipam = network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: sub, Gateway: sub.Addr().Next()}}}
	}
	if req.IPAM != nil {
		ipam = *req.IPAM
	}
	n := &fakeNetwork{
		net: network.Network{
			Name: req.Name, ID: randomID(), Created: time.Now(), Scope: "local", Driver: driver,
			EnableIPv4: true, IPAM: ipam, Internal: req.Internal, Attachable: req.Attachable,
			Options: nonNil(req.Options), Labels: nonNil(req.Labels),
		},
		builtin: builtin, containers: map[string]network.EndpointResource{}, nextIP: 2,
	}
	b.networks[n.net.ID] = n
	return n
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// network finds a network by ID, name or unique ID prefix; b.mu is held.
func (b *Backend) network(ref string) (*fakeNetwork, error) {
	if n, ok := b.networks[ref]; ok {
		return n, nil
	}
	for _, n := range b.networks {
		if n.net.Name == ref {
			return n, nil
		}
	}
	n, ok, err := byPrefix(b.networks, ref, "")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(errdefs.ErrNotFound, "network %s not found", ref)
	}
	return n, nil
}

// connect attaches c to n; b.mu is held.
func (b *Backend) connect(n *fakeNetwork, c *fakeContainer, ep *network.EndpointSettings) {
	var es network.EndpointSettings
	if ep != nil {
		es = *ep.Copy()
	}
	es.NetworkID, es.EndpointID = n.net.ID, randomID()
	res := network.EndpointResource{Name: c.name, EndpointID: es.EndpointID}
	if len(n.net.IPAM.Config) > 0 {
		sub := n.net.IPAM.Config[0].Subnet
		addr := sub.Addr()
		for range n.nextIP {
			addr = addr.Next()
		}
		n.nextIP++
		es.IPAddress, es.IPPrefixLen, es.Gateway = addr, sub.Bits(), n.net.IPAM.Config[0].Gateway
		res.IPv4Address = netip.PrefixFrom(addr, sub.Bits())
	}
	c.networks[n.net.Name] = &es
	n.containers[c.id] = res
	b.emit(events.NetworkEventType, events.ActionConnect, n.net.ID, map[string]string{"name": n.net.Name, "container": c.id})
}

func (n *fakeNetwork) inspect() network.Inspect {
	return network.Inspect{Network: n.net, Containers: maps.Clone(n.containers)}
}

// NetworkCreate implements dockerapi.Backend.
func (b *Backend) NetworkCreate(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.networks {
		if n.net.Name == req.Name {
			return network.CreateResponse{}, errf(errdefs.ErrConflict, "network with name %s already exists", req.Name)
		}
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return network.CreateResponse{}, errf(errdefs.ErrNotFound, "plugin %q not found", req.Driver)
	}
	n := b.addNetwork(req, false)
	b.emit(events.NetworkEventType, events.ActionCreate, n.net.ID, map[string]string{"name": n.net.Name, "type": n.net.Driver})
	return network.CreateResponse{ID: n.net.ID}, nil
}

// NetworkList implements dockerapi.Backend. Filters: name, id, driver,
// label, type (custom/builtin).
func (b *Backend) NetworkList(_ context.Context, f dockerapi.Filters) ([]network.Summary, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []network.Summary
	for _, n := range b.networks {
		if !matchAny(f["name"], func(v string) bool { return strings.Contains(n.net.Name, v) }) ||
			!matchAny(f["id"], func(v string) bool { return strings.HasPrefix(n.net.ID, v) }) ||
			!matchAny(f["driver"], func(v string) bool { return n.net.Driver == v }) ||
			!matchAny(f["type"], func(v string) bool { return (v == "builtin") == n.builtin }) ||
			!matchLabels(n.net.Labels, f["label"]) {
			continue
		}
		out = append(out, network.Summary{Network: n.net})
	}
	slices.SortFunc(out, func(x, y network.Summary) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// NetworkInspect implements dockerapi.Backend.
func (b *Backend) NetworkInspect(_ context.Context, ref string) (network.Inspect, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.network(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return n.inspect(), nil
}

// NetworkRemove implements dockerapi.Backend.
func (b *Backend) NetworkRemove(_ context.Context, ref string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.network(ref)
	if err != nil {
		return err
	}
	if n.builtin {
		return errf(errdefs.ErrInvalid, "%s is a pre-defined network and cannot be removed", n.net.Name)
	}
	if len(n.containers) > 0 {
		return errf(errdefs.ErrConflict, "error while removing network: network %s id %s has active endpoints", n.net.Name, n.net.ID)
	}
	delete(b.networks, n.net.ID)
	b.emit(events.NetworkEventType, events.ActionDestroy, n.net.ID, map[string]string{"name": n.net.Name})
	return nil
}

// NetworkConnect implements dockerapi.Backend.
func (b *Backend) NetworkConnect(_ context.Context, ref, containerRef string, settings *network.EndpointSettings) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.network(ref)
	if err != nil {
		return err
	}
	c, err := b.container(containerRef)
	if err != nil {
		return err
	}
	if _, ok := n.containers[c.id]; ok {
		return errf(errdefs.ErrConflict, "endpoint with name %s already exists in network %s", c.name, n.net.Name)
	}
	b.connect(n, c, settings)
	return nil
}

// NetworkDisconnect implements dockerapi.Backend.
func (b *Backend) NetworkDisconnect(_ context.Context, ref, containerRef string, force bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.network(ref)
	if err != nil {
		return err
	}
	c, err := b.container(containerRef)
	if err != nil {
		return err
	}
	if _, ok := n.containers[c.id]; !ok {
		if force {
			return nil
		}
		return errf(errdefs.ErrConflict, "container %s is not connected to network %s", shortID(c.id), n.net.Name)
	}
	delete(n.containers, c.id)
	delete(c.networks, n.net.Name)
	b.emit(events.NetworkEventType, events.ActionDisconnect, n.net.ID, map[string]string{"name": n.net.Name, "container": c.id})
	return nil
}

// NetworkPrune implements dockerapi.Backend.
func (b *Backend) NetworkPrune(_ context.Context, f dockerapi.Filters) (network.PruneReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var rep network.PruneReport
	for id, n := range b.networks {
		if n.builtin || len(n.containers) > 0 || !matchLabels(n.net.Labels, f["label"]) {
			continue
		}
		delete(b.networks, id)
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.net.Name)
		b.emit(events.NetworkEventType, events.ActionDestroy, n.net.ID, map[string]string{"name": n.net.Name})
	}
	slices.Sort(rep.NetworksDeleted)
	return rep, nil
}

type fakeVolume struct {
	v         volume.Volume
	anonymous bool
}

// ensureVolume creates a named volume if it is missing; b.mu is held.
func (b *Backend) ensureVolume(name string) *fakeVolume {
	if v, ok := b.volumes[name]; ok {
		return v
	}
	v := &fakeVolume{v: volume.Volume{
		Name: name, Driver: "local", Scope: "local", Mountpoint: "/var/lib/skiff/volumes/" + name + "/_data",
		CreatedAt: time.Now().UTC().Format(time.RFC3339), Labels: map[string]string{}, Options: map[string]string{},
	}}
	b.volumes[name] = v
	b.emit(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": "local"})
	return v
}

func (b *Backend) volumeUsers(name string) []string {
	var ids []string
	for _, c := range b.containers {
		for _, bind := range c.hostConfig.Binds {
			if src, _, _ := strings.Cut(bind, ":"); src == name {
				ids = append(ids, c.id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// VolumeCreate implements dockerapi.Backend.
func (b *Backend) VolumeCreate(_ context.Context, req volume.CreateRequest) (volume.Volume, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, errf(errdefs.ErrNotFound, "error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver)
	}
	name, anonymous := req.Name, req.Name == ""
	if anonymous {
		name = randomID()
	}
	v := b.ensureVolume(name)
	v.anonymous = anonymous
	if len(req.Labels) > 0 {
		v.v.Labels = maps.Clone(req.Labels)
	}
	if len(req.DriverOpts) > 0 {
		v.v.Options = maps.Clone(req.DriverOpts)
	}
	return v.v, nil
}

// VolumeList implements dockerapi.Backend. Filters: name, driver, label,
// dangling.
func (b *Backend) VolumeList(_ context.Context, f dockerapi.Filters) ([]volume.Volume, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []volume.Volume
	for _, v := range b.volumes {
		if !matchAny(f["name"], func(s string) bool { return strings.Contains(v.v.Name, s) }) ||
			!matchAny(f["driver"], func(s string) bool { return v.v.Driver == s }) ||
			!matchAny(f["dangling"], func(s string) bool { return (s == "true") == (len(b.volumeUsers(v.v.Name)) == 0) }) ||
			!matchLabels(v.v.Labels, f["label"]) {
			continue
		}
		out = append(out, v.v)
	}
	slices.SortFunc(out, func(x, y volume.Volume) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// VolumeInspect implements dockerapi.Backend.
func (b *Backend) VolumeInspect(_ context.Context, name string) (volume.Volume, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.volumes[name]
	if !ok {
		return volume.Volume{}, errf(errdefs.ErrNotFound, "get %s: no such volume", name)
	}
	return v.v, nil
}

// VolumeRemove implements dockerapi.Backend.
func (b *Backend) VolumeRemove(_ context.Context, name string, force bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.volumes[name]; !ok {
		if force {
			return nil
		}
		return errf(errdefs.ErrNotFound, "get %s: no such volume", name)
	}
	if users := b.volumeUsers(name); len(users) > 0 {
		return errf(errdefs.ErrConflict, "remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	delete(b.volumes, name)
	b.emit(events.VolumeEventType, events.ActionDestroy, name, nil)
	return nil
}

// VolumePrune implements dockerapi.Backend: unused anonymous volumes, or
// all unused ones with the filter all=true.
func (b *Backend) VolumePrune(_ context.Context, f dockerapi.Filters) (volume.PruneReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := slices.Contains(f["all"], "true") || slices.Contains(f["all"], "1")
	var rep volume.PruneReport
	for name, v := range b.volumes {
		if len(b.volumeUsers(name)) > 0 || !all && !v.anonymous || !matchLabels(v.v.Labels, f["label"]) {
			continue
		}
		delete(b.volumes, name)
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		b.emit(events.VolumeEventType, events.ActionDestroy, name, nil)
	}
	slices.Sort(rep.VolumesDeleted)
	return rep, nil
}
