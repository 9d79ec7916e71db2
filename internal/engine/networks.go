package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/bridge"
)

// pseudoNetworks are listed like Docker's but have no bridge.
var pseudoNetworks = []string{"host", "none"}

// pseudoID is a stable ID for a pseudo network.
func pseudoID(name string) string { return digest.FromString("skiff-network-" + name).Encoded() }

// NetworkCreate creates a bridge network.
func (e *Engine) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	if req.Name == "" {
		return network.CreateResponse{}, fmt.Errorf("network name is required: %w", errdefs.ErrInvalid)
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return network.CreateResponse{}, fmt.Errorf("network driver %q is not supported (only \"bridge\"): %w", req.Driver, errdefs.ErrInvalid)
	}
	if slices.Contains(pseudoNetworks, req.Name) || req.Name == defaultNetwork {
		return network.CreateResponse{}, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", req.Name, errdefs.ErrConflict)
	}
	if _, err := e.network(req.Name); err == nil {
		return network.CreateResponse{}, fmt.Errorf("network with name %s already exists: %w", req.Name, errdefs.ErrConflict)
	}
	cfg := bridge.NetworkConfig{ID: newID(), Name: req.Name, Internal: req.Internal, DNS: true, Labels: req.Labels}
	if req.IPAM != nil {
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
				cfg.Subnet = c.Subnet.String()
				if c.Gateway.IsValid() {
					cfg.Gateway = c.Gateway.String()
				}
				break
			}
		}
	}
	n, err := e.opts.Networks.CreateNetwork(ctx, cfg)
	if err != nil {
		return network.CreateResponse{}, err
	}
	e.publish(events.NetworkEventType, events.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return network.CreateResponse{ID: n.ID, Warning: ""}, nil
}

// NetworkList lists networks, including host and none.
func (e *Engine) NetworkList(ctx context.Context, filters dockerapi.Filters) ([]network.Summary, error) {
	out := []network.Summary{}
	for _, in := range e.allNetworks() {
		if !matchNetwork(in, filters) {
			continue
		}
		out = append(out, network.Summary{Network: in.Network})
	}
	return out, nil
}

func matchNetwork(n network.Inspect, f dockerapi.Filters) bool {
	for key, values := range f {
		if len(values) == 0 || key == "label" {
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "name":
				ok = strings.Contains(n.Name, v)
			case "id":
				ok = strings.HasPrefix(n.ID, v)
			case "driver":
				ok = n.Driver == v
			case "type":
				builtin := n.Name == defaultNetwork || slices.Contains(pseudoNetworks, n.Name)
				ok = (v == "builtin") == builtin
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
	return matchLabels(n.Labels, f["label"])
}

func (e *Engine) allNetworks() []network.Inspect {
	var out []network.Inspect
	for _, n := range e.opts.Networks.Networks() {
		out = append(out, e.inspectNetwork(n))
	}
	for _, name := range pseudoNetworks {
		out = append(out, network.Inspect{Network: network.Network{
			Name: name, ID: pseudoID(name), Scope: "local", Driver: name, Labels: map[string]string{},
			Options: map[string]string{}, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		}, Containers: map[string]network.EndpointResource{}})
	}
	slices.SortFunc(out, func(a, b network.Inspect) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (e *Engine) inspectNetwork(n bridge.Network) network.Inspect {
	in := network.Inspect{
		Network: network.Network{
			Name:     n.Name,
			ID:       n.ID,
			Created:  time.Time{},
			Scope:    "local",
			Driver:   "bridge",
			Internal: n.Internal,
			Labels:   orEmpty(n.Labels),
			Options:  map[string]string{"com.docker.network.bridge.name": n.Bridge},
			IPAM:     network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		},
		Containers: map[string]network.EndpointResource{},
	}
	if p, err := netip.ParsePrefix(n.Subnet); err == nil {
		cfg := network.IPAMConfig{Subnet: p}
		cfg.Gateway, _ = netip.ParseAddr(n.Gateway)
		in.IPAM.Config = append(in.IPAM.Config, cfg)
	}
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		for _, s := range c.rec.Networks {
			if s.NetworkID == n.ID && s.IPAddress.IsValid() {
				in.Containers[c.rec.ID] = network.EndpointResource{
					Name:        c.rec.Name,
					EndpointID:  s.EndpointID,
					MacAddress:  s.MacAddress,
					IPv4Address: netip.PrefixFrom(s.IPAddress, s.IPPrefixLen),
				}
			}
		}
		c.mu.Unlock()
	}
	return in
}

// NetworkInspect returns one network.
func (e *Engine) NetworkInspect(ctx context.Context, nameOrID string) (network.Inspect, error) {
	for _, in := range e.allNetworks() {
		if in.Name == nameOrID || in.ID == nameOrID {
			return in, nil
		}
	}
	n, err := e.network(nameOrID)
	if err != nil {
		return network.Inspect{}, err
	}
	return e.inspectNetwork(n), nil
}

// NetworkRemove removes a user network without endpoints.
func (e *Engine) NetworkRemove(ctx context.Context, nameOrID string) error {
	if slices.Contains(pseudoNetworks, nameOrID) || nameOrID == defaultNetwork {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", nameOrID, errdefs.ErrConflict)
	}
	n, err := e.network(nameOrID)
	if err != nil {
		return err
	}
	if n.Name == defaultNetwork {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", nameOrID, errdefs.ErrConflict)
	}
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		_, attached := c.rec.Networks[n.Name]
		id := c.rec.ID
		c.mu.Unlock()
		if attached {
			return fmt.Errorf("error while removing network: network %s has active endpoints (container %s): %w", n.Name, id[:12], errdefs.ErrConflict)
		}
	}
	if err := e.opts.Networks.RemoveNetwork(ctx, n.ID); err != nil {
		return err
	}
	e.publish(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

// NetworkConnect adds a network to a container; a running container is
// attached at once (as its next ethN).
func (e *Engine) NetworkConnect(ctx context.Context, nameOrID, containerNameOrID string, settings *network.EndpointSettings) error {
	n, err := e.network(nameOrID)
	if err != nil {
		return err
	}
	c, err := e.ctrs.get(containerNameOrID)
	if err != nil {
		return err
	}
	if settings == nil {
		settings = &network.EndpointSettings{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := string(c.rec.HostConfig.NetworkMode)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return fmt.Errorf("container cannot be connected to network endpoints: its network mode is %s: %w", mode, errdefs.ErrConflict)
	}
	if _, ok := c.rec.Networks[n.Name]; ok {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.rec.Name, n.Name, errdefs.ErrConflict)
	}
	if c.rec.State.Running {
		ep, err := e.opts.Networks.Attach(ctx, bridge.AttachRequest{
			NetworkID:   n.ID,
			ContainerID: c.rec.ID,
			NetNS:       e.netnsPath(c.rec.ID),
			IfName:      fmt.Sprintf("eth%d", len(c.rec.Networks)),
			Names:       dnsNames(c, settings),
		})
		if err != nil {
			return err
		}
		settings.NetworkID = n.ID
		settings.EndpointID = c.rec.ID[:12] + "-" + n.ID[:12]
		settings.IPAddress, _ = netip.ParseAddr(ep.IP)
		settings.Gateway, _ = netip.ParseAddr(ep.Gateway)
		settings.IPPrefixLen = ep.PrefixLen
		settings.MacAddress = network.HardwareAddr(parseMAC(ep.MAC))
	}
	if c.rec.Networks == nil {
		c.rec.Networks = map[string]*network.EndpointSettings{}
	}
	c.rec.Networks[n.Name] = settings
	if err := e.ctrs.save(c); err != nil {
		return err
	}
	e.publish(events.NetworkEventType, events.ActionConnect, n.ID, map[string]string{"name": n.Name, "container": c.rec.ID, "type": "bridge"})
	return nil
}

// NetworkDisconnect removes a network from a container.
func (e *Engine) NetworkDisconnect(ctx context.Context, nameOrID, containerNameOrID string, force bool) error {
	n, err := e.network(nameOrID)
	if err != nil {
		return err
	}
	c, err := e.ctrs.get(containerNameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.rec.Networks[n.Name]; !ok {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.rec.ID[:12], n.Name, errdefs.ErrInvalid)
	}
	if c.rec.State.Running {
		if err := e.opts.Networks.Detach(ctx, n.ID, c.rec.ID); err != nil {
			return err
		}
	}
	delete(c.rec.Networks, n.Name)
	if string(c.rec.HostConfig.NetworkMode) == n.Name {
		c.rec.HostConfig.NetworkMode = "none"
		for name := range c.rec.Networks {
			c.rec.HostConfig.NetworkMode = container.NetworkMode(name)
			break
		}
	}
	if err := e.ctrs.save(c); err != nil {
		return err
	}
	e.publish(events.NetworkEventType, events.ActionDisconnect, n.ID, map[string]string{"name": n.Name, "container": c.rec.ID, "type": "bridge"})
	return nil
}

// NetworkPrune removes user networks no container uses.
func (e *Engine) NetworkPrune(ctx context.Context, filters dockerapi.Filters) (network.PruneReport, error) {
	var rep network.PruneReport
	for _, n := range e.opts.Networks.Networks() {
		if n.Name == defaultNetwork || !matchLabels(n.Labels, filters["label"]) {
			continue
		}
		if err := e.NetworkRemove(ctx, n.ID); err == nil {
			rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
		}
	}
	return rep, nil
}
