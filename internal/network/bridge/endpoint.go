package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/netns"
)

// AttachRequest connects a container's network namespace to a network.
type AttachRequest struct {
	NetworkID   string // ID (or name) of the network
	ContainerID string // [a-zA-Z0-9_.-], up to 64 characters
	NetNS       string // path of the container's network namespace
	IfName      string // interface name in the container; default "eth0"
	Names       []string
	IP          string // static address; default: the lowest free one
	Ports       []PortMapping
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	NetworkID   string
	ContainerID string
	IP          string
	PrefixLen   int
	Gateway     string
	MAC         string
	IfName      string
	Names       []string      // DNS names on this network
	Ports       []PortMapping // normalized, with allocated host ports
}

func (ep *endpoint) public(n *network) Endpoint {
	return Endpoint{
		NetworkID: n.ID, ContainerID: ep.ContainerID,
		IP: ep.IP, PrefixLen: n.prefix.Bits(), Gateway: n.Gateway, MAC: ep.MAC, IfName: ep.IfName,
		Names: slices.Clone(ep.Names), Ports: slices.Clone(ep.Ports),
	}
}

// Attach creates the container's interface on the network: a veth pair with
// the host side on the bridge, the container side renamed to IfName with its
// address, a MAC derived from it (02:42:...), and a default route via the
// gateway (unless the network is internal or the container has a default
// route already). Published ports get their DNAT rules and host ports.
//
// Errors: ErrNotFound for an unknown network or a missing namespace,
// ErrConflict when the container is attached already or an address or host
// port is taken, ErrInvalid for bad input (ports on an internal network
// included).
func (m *Manager) Attach(ctx context.Context, r AttachRequest) (Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkStarted(); err != nil {
		return Endpoint{}, err
	}
	n := m.lookup(r.NetworkID)
	if n == nil {
		return Endpoint{}, fmt.Errorf("network %s: %w", r.NetworkID, errdefs.ErrNotFound)
	}
	ep, ports, err := m.newEndpoint(n, r)
	if err != nil {
		return Endpoint{}, err
	}
	if err := m.reservePorts(ep, ports); err != nil {
		return Endpoint{}, err
	}
	n.Endpoints[ep.ContainerID] = ep
	undo := func() {
		if err := m.fw.apply(nil, epComment(n.ID, ep.ContainerID)); err != nil {
			m.log.Warn("clean up rules after failed attach", "container", ep.ContainerID, "err", err)
		}
		m.unplumb(ep)
		m.releasePorts(ep)
		delete(n.Endpoints, ep.ContainerID)
		if err := m.save(); err != nil {
			m.log.Warn("save state", "err", err)
		}
	}
	// Intent first: a crash from here on leaves a record that Detach or
	// Start can act on, never kernel state nobody knows about.
	if err := m.save(); err != nil {
		m.releasePorts(ep)
		delete(n.Endpoints, ep.ContainerID)
		return Endpoint{}, err
	}
	if err := m.plumb(n, ep); err != nil {
		undo()
		return Endpoint{}, fmt.Errorf("attach container %s to network %s: %w", ep.ContainerID, n.Name, err)
	}
	if err := m.fw.apply(endpointRules(n, ep)); err != nil {
		undo()
		return Endpoint{}, fmt.Errorf("attach container %s to network %s: %w", ep.ContainerID, n.Name, err)
	}
	m.forgetFlows(udpPortFlows(ep.Ports)...)
	m.refreshDNS(n)
	m.log.Info("attached", "network", n.Name, "container", ep.ContainerID, "ip", ep.IP, "ports", len(ep.Ports))
	return ep.public(n), nil
}

// newEndpoint validates r and picks the address; ports come back normalized
// but not yet reserved.
func (m *Manager) newEndpoint(n *network, r AttachRequest) (*endpoint, []PortMapping, error) {
	if !validName(r.ContainerID, maxIDLen) {
		return nil, nil, fmt.Errorf("invalid container id %q: %w", r.ContainerID, errdefs.ErrInvalid)
	}
	if r.NetNS == "" {
		return nil, nil, fmt.Errorf("attach container %s: no network namespace given: %w", r.ContainerID, errdefs.ErrInvalid)
	}
	if r.IfName == "" {
		r.IfName = "eth0"
	}
	if err := validIfName(r.IfName); err != nil {
		return nil, nil, err
	}
	if _, ok := n.Endpoints[r.ContainerID]; ok {
		return nil, nil, fmt.Errorf("container %s is already attached to network %s: %w", r.ContainerID, n.Name, errdefs.ErrConflict)
	}
	if len(r.Ports) > 0 && n.Internal {
		return nil, nil, fmt.Errorf("network %s is internal: ports cannot be published on it: %w", n.Name, errdefs.ErrInvalid)
	}
	var ports []PortMapping
	seen := map[portKey]bool{}
	for _, p := range r.Ports {
		p, err := normalizePort(p)
		if err != nil {
			return nil, nil, err
		}
		if p.HostPort != 0 {
			if seen[keyOf(p)] {
				return nil, nil, fmt.Errorf("port mapping %s is given twice: %w", p, errdefs.ErrInvalid)
			}
			seen[keyOf(p)] = true
		}
		ports = append(ports, p)
	}

	used := func(a netip.Addr) bool {
		if a == n.gw {
			return true
		}
		for _, ep := range n.Endpoints {
			if ep.ip == a {
				return true
			}
		}
		return false
	}
	var ip netip.Addr
	if r.IP != "" {
		var err error
		if ip, err = parseHostIP("ip", r.IP, n.prefix); err != nil {
			return nil, nil, err
		}
		if ip == n.gw {
			return nil, nil, fmt.Errorf("address %s is the gateway of network %s: %w", ip, n.Name, errdefs.ErrConflict)
		}
		if used(ip) {
			return nil, nil, fmt.Errorf("address %s is already in use on network %s: %w", ip, n.Name, errdefs.ErrConflict)
		}
	} else {
		var ok bool
		if ip, ok = nextFree(n.prefix, used); !ok {
			return nil, nil, fmt.Errorf("no free address left in %s on network %s: %w", n.Subnet, n.Name, errdefs.ErrUnavailable)
		}
	}
	names := make([]string, 0, len(r.Names))
	for _, name := range r.Names {
		if name = canonicalName(name); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return &endpoint{
		ContainerID: r.ContainerID,
		NetNS:       r.NetNS,
		IfName:      r.IfName,
		HostIfName:  hostIfName(r.ContainerID, n.ID),
		IP:          ip.String(),
		MAC:         macFor(ip).String(),
		Names:       names,
		Attached:    time.Now().UTC(),
		ip:          ip,
	}, ports, nil
}

// reservePorts takes the host ports of ports for ep (allocating HostPort 0)
// and binds them on the host; all or nothing.
func (m *Manager) reservePorts(ep *endpoint, ports []PortMapping) error {
	for _, p := range ports {
		k := keyOf(p)
		if p.HostPort == 0 {
			var fd int
			port, err := m.ports.allocate(p.Proto, k.ip, ep.ContainerID, func(k portKey) error {
				return m.inHost(func() (err error) { fd, err = bindPort(k); return err })
			})
			if err != nil {
				m.releasePorts(ep)
				return err
			}
			p.HostPort = port
			ep.reserved = append(ep.reserved, fd)
		} else {
			if err := m.ports.take(k, ep.ContainerID); err != nil {
				m.releasePorts(ep)
				return err
			}
			var fd int
			if err := m.inHost(func() (err error) { fd, err = bindPort(k); return err }); err != nil {
				m.ports.release(k)
				m.releasePorts(ep)
				return err
			}
			ep.reserved = append(ep.reserved, fd)
		}
		ep.Ports = append(ep.Ports, p)
	}
	return nil
}

func (m *Manager) releasePorts(ep *endpoint) {
	for _, p := range ep.Ports {
		m.ports.release(keyOf(p))
	}
	closeAll(ep.reserved)
	ep.reserved = nil
}

// plumb makes the veth pair and configures the container side.
func (m *Manager) plumb(n *network, ep *endpoint) error {
	cns, err := netns.Open(ep.NetNS)
	if err != nil {
		return err
	}
	defer cns.Close()
	ch, err := netlink.NewHandleAt(vnetns.NsHandle(cns.Fd()))
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ep.NetNS, err)
	}
	defer ch.Close()

	br, err := m.nl.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if stale, err := m.nl.LinkByName(ep.HostIfName); err == nil {
		_ = m.nl.LinkDel(stale) // left by a crash: the name is this endpoint's
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostIfName, MTU: br.Attrs().MTU, MasterIndex: br.Attrs().Index},
		PeerName:         ep.IfName,
		PeerHardwareAddr: macFor(ep.ip),
		PeerNamespace:    netlink.NsFd(cns.Fd()),
	}
	if err := m.nl.LinkAdd(veth); err != nil {
		if isExist(err) {
			return fmt.Errorf("interface %s already exists in %s: %w", ep.IfName, ep.NetNS, errdefs.ErrConflict)
		}
		return fmt.Errorf("create veth %s: %w", ep.HostIfName, err)
	}
	host, err := m.nl.LinkByName(ep.HostIfName)
	if err != nil {
		return fmt.Errorf("veth %s: %w", ep.HostIfName, err)
	}
	// Hairpin: with br_netfilter a container's DNATed connection to its own
	// published port is bridged back out of the port it came in on.
	if err := m.nl.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("veth %s hairpin: %w", ep.HostIfName, err)
	}
	if err := m.nl.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s up: %w", ep.HostIfName, err)
	}

	link, err := ch.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("container interface %s: %w", ep.IfName, err)
	}
	if err := ch.AddrAdd(link, &netlink.Addr{IPNet: ipNet(ep.ip, n.prefix.Bits())}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ep.IP, ep.IfName, err)
	}
	// IPv4-only networks: no IPv6 on the interface (as Docker), which also
	// spares it link-local DAD echoed back by the hairpin port.
	err = netns.Do(ep.NetNS, func() error {
		return writeSysctl("net/ipv6/conf/"+ep.IfName+"/disable_ipv6", "1")
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disable ipv6 on %s: %w", ep.IfName, err)
	}
	if err := ch.LinkSetUp(link); err != nil {
		return fmt.Errorf("container interface %s up: %w", ep.IfName, err)
	}
	if lo, err := ch.LinkByName("lo"); err == nil {
		_ = ch.LinkSetUp(lo)
	}
	if !n.Internal {
		if err := addDefaultRoute(ch, n.gw); err != nil {
			return err
		}
	}
	return nil
}

// addDefaultRoute adds a default route via gw unless there is one.
func addDefaultRoute(h *netlink.Handle, gw netip.Addr) error {
	b := gw.As4()
	err := h.RouteAdd(&netlink.Route{Gw: b[:]})
	if err != nil && !isExist(err) {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

// unplumb deletes the host side of the veth pair, which takes the container
// side with it.
func (m *Manager) unplumb(ep *endpoint) {
	l, err := m.nl.LinkByName(ep.HostIfName)
	if err != nil {
		return
	}
	if err := m.nl.LinkDel(l); err != nil && !isNotFound(err) {
		m.log.Warn("delete veth", "veth", ep.HostIfName, "err", err)
	}
}

// Detach removes a container from a network: its rules, interface, address,
// host ports and DNS names. Detaching what is not attached (or from a network
// that does not exist) is not an error.
func (m *Manager) Detach(ctx context.Context, networkID, containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkStarted(); err != nil {
		return err
	}
	n := m.lookup(networkID)
	if n == nil {
		return nil
	}
	ep, ok := n.Endpoints[containerID]
	if !ok {
		return nil
	}
	if err := m.fw.apply(nil, epComment(n.ID, containerID)); err != nil {
		return fmt.Errorf("detach container %s from network %s: %w", containerID, n.Name, err)
	}
	m.unplumb(ep)
	m.forgetFlows(containerFlows(ep.ip)...)
	m.releasePorts(ep)
	delete(n.Endpoints, containerID)
	m.refreshDNS(n)
	m.log.Info("detached", "network", n.Name, "container", containerID)
	if err := m.save(); err != nil {
		return err
	}
	m.restoreDefaultRoute(containerID, ep.NetNS)
	return nil
}

// restoreDefaultRoute gives a container whose default route went away with a
// detached interface one via another of its networks, first by name, as
// Docker moves the gateway.
func (m *Manager) restoreDefaultRoute(containerID, nsPath string) {
	for _, n := range m.sortedNetworks() {
		ep, ok := n.Endpoints[containerID]
		if !ok || n.Internal || ep.NetNS != nsPath {
			continue
		}
		f, err := netns.Open(nsPath)
		if err != nil {
			return
		}
		defer f.Close()
		h, err := netlink.NewHandleAt(vnetns.NsHandle(f.Fd()))
		if err != nil {
			return
		}
		defer h.Close()
		if err := addDefaultRoute(h, n.gw); err != nil {
			m.log.Warn("restore default route", "container", containerID, "err", err)
		}
		return
	}
}

// Endpoints lists a network's endpoints, sorted by container ID.
func (m *Manager) Endpoints(networkID string) []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookup(networkID)
	if n == nil {
		return nil
	}
	var out []Endpoint
	for _, id := range slices.Sorted(maps.Keys(n.Endpoints)) {
		out = append(out, n.Endpoints[id].public(n))
	}
	return out
}

// hostIfName names the host side of a container's veth on a network: "veth",
// the start of the container ID, and a hash of both IDs (15 characters).
func hostIfName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(networkID + "/" + containerID))
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, containerID)
	prefix = prefix[:min(5, len(prefix))]
	h := hex.EncodeToString(sum[:])
	return "veth" + prefix + h[:11-len(prefix)]
}
