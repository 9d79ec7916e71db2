package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

// NetworkConfig asks for a network.
type NetworkConfig struct {
	ID   string // default: 64 random hex digits
	Name string // required, unique
	// Subnet (CIDR) and Gateway are allocated when empty: a free block of
	// the default pool and its first address.
	Subnet, Gateway string
	Bridge          string // Linux bridge name; default "skiff-" + ID[:8]
	Internal        bool   // no traffic to or from outside the network
	DNS             bool   // run the embedded DNS server on the gateway
	// NoHairpinNAT drops the rule that masquerades DNATed traffic from the
	// network to itself (Docker's hairpin for published ports). A network
	// whose DNAT comes from a service proxy that does its own hairpin NAT
	// (the pods network) sets it, so that pod → Service → pod keeps the
	// client pod's address.
	NoHairpinNAT bool
	Labels       map[string]string
}

// Network is a network as the Manager keeps it.
type Network struct {
	ID, Name        string
	Subnet, Gateway string
	Bridge          string
	Internal, DNS   bool
	NoHairpinNAT    bool
	Default         bool // the predefined "bridge" network
	Labels          map[string]string
	Created         time.Time
}

func (n *network) public() Network {
	return Network{
		ID: n.ID, Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, Bridge: n.Bridge,
		Internal: n.Internal, DNS: n.DNS, NoHairpinNAT: n.NoHairpinNAT, Default: n.Default,
		Labels: maps.Clone(n.Labels), Created: n.Created,
	}
}

// validName reports whether s is [a-zA-Z0-9][a-zA-Z0-9_.-]* and at most
// max bytes long (network names, network and container IDs). No regexp:
// package initialisation runs in every container's init too.
func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '_' && r != '.' && r != '-') {
			return false
		}
	}
	return true
}

const (
	maxIDLen   = 64 // keeps rule comments within nftables' userdata limit
	maxNameLen = 255
)

// Names Docker has for networks this package does not implement.
var reservedNames = []string{"host", "none"}

// CreateNetwork creates a bridge network. It fails with ErrInvalid on a bad
// name, subnet or gateway, and ErrConflict when the name, bridge or subnet
// is taken.
func (m *Manager) CreateNetwork(ctx context.Context, c NetworkConfig) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkStarted(); err != nil {
		return Network{}, err
	}
	n, err := m.newNetwork(c)
	if err != nil {
		return Network{}, err
	}
	m.nets[n.ID] = n
	if err := m.save(); err != nil {
		delete(m.nets, n.ID)
		return Network{}, err
	}
	if err := m.setUpNetwork(n); err != nil {
		if terr := m.tearDownNetwork(n); terr != nil {
			m.log.Warn("clean up after failed network creation", "network", n.ID, "err", terr)
		}
		delete(m.nets, n.ID)
		if serr := m.save(); serr != nil {
			m.log.Warn("save state", "err", serr)
		}
		return Network{}, err
	}
	m.log.Info("network created", "network", n.Name, "id", n.ID, "subnet", n.Subnet, "bridge", n.Bridge)
	return n.public(), nil
}

// newNetwork validates c and fills in what it leaves to the Manager.
func (m *Manager) newNetwork(c NetworkConfig) (*network, error) {
	if c.ID == "" {
		c.ID = randomID()
	}
	if !validName(c.ID, maxIDLen) {
		return nil, fmt.Errorf("invalid network id %q: %w", c.ID, errdefs.ErrInvalid)
	}
	if _, ok := m.nets[c.ID]; ok {
		return nil, fmt.Errorf("network id %s: %w", c.ID, errdefs.ErrAlreadyExists)
	}
	if !validName(c.Name, maxNameLen) {
		return nil, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", c.Name, errdefs.ErrInvalid)
	}
	if slices.Contains(reservedNames, c.Name) {
		return nil, fmt.Errorf("network name %q is reserved for a predefined network: %w", c.Name, errdefs.ErrConflict)
	}
	for _, o := range m.nets {
		if o.Name == c.Name {
			return nil, fmt.Errorf("network with name %s already exists: %w", c.Name, errdefs.ErrConflict)
		}
	}
	if c.Bridge == "" {
		c.Bridge = "skiff-" + c.ID[:min(8, len(c.ID))]
	}
	if err := validIfName(c.Bridge); err != nil {
		return nil, fmt.Errorf("invalid bridge name: %w", err)
	}
	for _, o := range m.nets {
		if o.Bridge == c.Bridge {
			return nil, fmt.Errorf("bridge %s is used by network %s: %w", c.Bridge, o.Name, errdefs.ErrConflict)
		}
	}

	var sub netip.Prefix
	if c.Subnet != "" {
		var err error
		if sub, err = parseSubnet(c.Subnet); err != nil {
			return nil, err
		}
		for _, o := range m.sortedNetworks() {
			if o.prefix.Overlaps(sub) {
				return nil, fmt.Errorf("subnet %s overlaps with network %s (%s): %w", sub, o.Name, o.Subnet, errdefs.ErrConflict)
			}
		}
	} else {
		if c.Gateway != "" {
			return nil, fmt.Errorf("gateway %s given without a subnet: %w", c.Gateway, errdefs.ErrInvalid)
		}
		taken, err := m.usedPrefixes()
		if err != nil {
			return nil, err
		}
		var ok bool
		if sub, ok = carve(m.pool, m.opts.DefaultPoolSize, taken); !ok {
			return nil, fmt.Errorf("no free /%d subnet left in %s: %w", m.opts.DefaultPoolSize, m.pool, errdefs.ErrUnavailable)
		}
	}
	gw := sub.Addr().Next()
	if c.Gateway != "" {
		var err error
		if gw, err = parseHostIP("gateway", c.Gateway, sub); err != nil {
			return nil, err
		}
	}
	return &network{
		ID: c.ID, Name: c.Name, Subnet: sub.String(), Gateway: gw.String(), Bridge: c.Bridge,
		Internal: c.Internal, DNS: c.DNS, NoHairpinNAT: c.NoHairpinNAT, Labels: maps.Clone(c.Labels),
		Created: time.Now().UTC(), Endpoints: map[string]*endpoint{},
		prefix: sub, gw: gw,
	}, nil
}

// usedPrefixes are the subnets an automatic one must avoid: other networks
// and the host's routes (but not those of Skiff's own bridges).
func (m *Manager) usedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	ours := map[string]bool{}
	for _, n := range m.nets {
		out = append(out, n.prefix)
		ours[n.Bridge] = true
	}
	routes, err := m.nl.RouteList(nil, unix.AF_INET)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route
		}
		if l, err := m.nl.LinkByIndex(r.LinkIndex); err == nil && ours[l.Attrs().Name] {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok || ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(a, ones).Masked())
	}
	return out, nil
}

// RemoveNetwork deletes a network (by ID, or name), its bridge, rules and DNS
// server. It fails with ErrConflict while containers are attached, and for
// the predefined network.
func (m *Manager) RemoveNetwork(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkStarted(); err != nil {
		return err
	}
	n := m.lookup(id)
	if n == nil {
		return fmt.Errorf("network %s: %w", id, errdefs.ErrNotFound)
	}
	if n.Default {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrConflict)
	}
	if len(n.Endpoints) > 0 {
		ids := slices.Sorted(maps.Keys(n.Endpoints))
		for i := range ids {
			ids[i] = shortID(ids[i])
		}
		return fmt.Errorf("network %s has active endpoints (%s): %w", n.Name, strings.Join(ids, ", "), errdefs.ErrConflict)
	}
	if err := m.tearDownNetwork(n); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	delete(m.nets, n.ID)
	m.log.Info("network removed", "network", n.Name, "id", n.ID)
	return m.save()
}

// SetNoHairpinNAT changes NetworkConfig.NoHairpinNAT of an existing
// network (by ID, or name) and swaps its rules in one batch.
func (m *Manager) SetNoHairpinNAT(ctx context.Context, id string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkStarted(); err != nil {
		return err
	}
	n := m.lookup(id)
	if n == nil {
		return fmt.Errorf("network %s: %w", id, errdefs.ErrNotFound)
	}
	if n.NoHairpinNAT == on {
		return nil
	}
	n.NoHairpinNAT = on
	if err := m.save(); err != nil {
		n.NoHairpinNAT = !on
		return err
	}
	if err := m.fw.apply(networkRules(n), netComment(n.ID)); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// Networks lists the networks, sorted by name.
func (m *Manager) Networks() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.sortedNetworks() {
		out = append(out, n.public())
	}
	return out
}

// Network returns one network by ID, or by name when no ID matches.
func (m *Manager) Network(idOrName string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookup(idOrName)
	if n == nil {
		return Network{}, fmt.Errorf("network %s: %w", idOrName, errdefs.ErrNotFound)
	}
	return n.public(), nil
}

func (m *Manager) lookup(idOrName string) *network {
	if n, ok := m.nets[idOrName]; ok {
		return n
	}
	for _, n := range m.nets {
		if n.Name == idOrName {
			return n
		}
	}
	return nil
}

func (m *Manager) sortedNetworks() []*network {
	ns := slices.Collect(maps.Values(m.nets))
	slices.SortFunc(ns, func(a, b *network) int { return strings.Compare(a.Name, b.Name) })
	return ns
}

func (m *Manager) defaultNetwork() *network {
	for _, n := range m.nets {
		if n.Default {
			return n
		}
	}
	return nil
}

func (m *Manager) addDefaultNetwork() error {
	sub, err := parseSubnet(m.opts.DefaultSubnet)
	if err != nil {
		return fmt.Errorf("bridge: default network: %w", err)
	}
	if err := validIfName(m.opts.DefaultBridge); err != nil {
		return fmt.Errorf("bridge: default network: %w", err)
	}
	for _, o := range m.nets {
		if o.prefix.Overlaps(sub) || o.Name == DefaultNetworkName || o.Bridge == m.opts.DefaultBridge {
			return fmt.Errorf("bridge: default network clashes with network %s: %w", o.Name, errdefs.ErrConflict)
		}
	}
	n := &network{
		ID: randomID(), Name: DefaultNetworkName, Subnet: sub.String(), Bridge: m.opts.DefaultBridge,
		Default: true, Created: time.Now().UTC(), Endpoints: map[string]*endpoint{},
		prefix: sub, gw: sub.Addr().Next(),
	}
	n.Gateway = n.gw.String()
	m.nets[n.ID] = n
	return nil
}

// setUpNetwork makes the kernel side of a new network.
func (m *Manager) setUpNetwork(n *network) error {
	if err := m.ensureBridge(n); err != nil {
		return err
	}
	if err := m.fw.apply(networkRules(n)); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if n.DNS {
		return m.startDNS(n)
	}
	return nil
}

// tearDownNetwork undoes setUpNetwork; missing pieces are fine.
func (m *Manager) tearDownNetwork(n *network) error {
	if s, ok := m.dns[n.ID]; ok {
		s.stop()
		delete(m.dns, n.ID)
	}
	if err := m.fw.apply(nil, netComment(n.ID)); err != nil {
		return err
	}
	l, err := m.nl.LinkByName(n.Bridge)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if err := m.nl.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// ensureBridge creates the network's bridge if needed and gives it its
// gateway address, a stable MAC address and route_localnet (so that DNAT from
// 127.0.0.1 can leave through it); idempotent.
func (m *Manager) ensureBridge(n *network) error {
	l, err := m.nl.LinkByName(n.Bridge)
	switch {
	case err == nil:
		if l.Type() != "bridge" {
			return fmt.Errorf("network %s: interface %s exists and is a %s, not a bridge: %w", n.Name, n.Bridge, l.Type(), errdefs.ErrConflict)
		}
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: 1500, HardwareAddr: macFor(n.gw)}}
		if err := m.nl.LinkAdd(br); err != nil {
			return fmt.Errorf("network %s: create bridge %s: %w", n.Name, n.Bridge, err)
		}
		if l, err = m.nl.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("network %s: bridge %s: %w", n.Name, n.Bridge, err)
		}
	default:
		return fmt.Errorf("network %s: bridge %s: %w", n.Name, n.Bridge, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(n.gw, n.prefix.Bits())}
	if err := m.nl.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("network %s: address %s on %s: %w", n.Name, addr.IPNet, n.Bridge, err)
	}
	if err := m.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("network %s: bridge %s up: %w", n.Name, n.Bridge, err)
	}
	err = m.inHost(func() error {
		return writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1")
	})
	if err != nil {
		return fmt.Errorf("network %s: route_localnet on %s: %w", n.Name, n.Bridge, err)
	}
	return nil
}

func validIfName(s string) error {
	if s == "" || len(s) >= unix.IFNAMSIZ || s == "." || s == ".." ||
		strings.ContainsAny(s, "/: \t\n\x00") {
		return fmt.Errorf("interface name %q: 1-15 characters, no '/', ':' or spaces: %w", s, errdefs.ErrInvalid)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
