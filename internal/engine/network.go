package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/network/netns"
)

const (
	defaultNetwork = "bridge"
	defaultSubnet  = "172.17.0.0/16"
	defaultBridge  = "skiff0"
)

// netSetup is what a started container's network looks like to its spec.
type netSetup struct {
	netns                               string // path, or "host"
	hostname                            string
	hostsPath, resolvPath, hostnamePath string
}

func (e *Engine) ensureDefaultNetwork(ctx context.Context) error {
	if _, err := e.network(defaultNetwork); err == nil {
		return nil
	}
	_, err := e.opts.Networks.CreateNetwork(ctx, bridge.NetworkConfig{
		ID:     newID(),
		Name:   defaultNetwork,
		Subnet: defaultSubnet,
		Bridge: defaultBridge,
	})
	if err != nil && !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return fmt.Errorf("default network: %w", err)
	}
	return nil
}

// network finds a bridge network by name, ID or ID prefix.
func (e *Engine) network(nameOrID string) (bridge.Network, error) {
	nets := e.opts.Networks.Networks()
	for _, n := range nets {
		if n.Name == nameOrID || n.ID == nameOrID {
			return n, nil
		}
	}
	var found []bridge.Network
	for _, n := range nets {
		if len(nameOrID) >= 3 && strings.HasPrefix(n.ID, nameOrID) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return bridge.Network{}, fmt.Errorf("network %s not found: %w", nameOrID, errdefs.ErrNotFound)
	}
	return bridge.Network{}, fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix): %w", nameOrID, len(found), errdefs.ErrInvalid)
}

func (e *Engine) netnsPath(id string) string { return filepath.Join(e.opts.RunDir, "netns", id) }

// setupNetwork gives the container its network namespace, attachments and
// /etc/hosts, /etc/resolv.conf, /etc/hostname. Call with c.mu held.
func (e *Engine) setupNetwork(ctx context.Context, c *ctr, undo *[]func()) (netSetup, error) {
	hc := c.rec.HostConfig
	mode := string(hc.NetworkMode)
	s := netSetup{
		hostname:     c.rec.Config.Hostname,
		hostsPath:    e.ctrs.path(c.rec.ID, "hosts"),
		resolvPath:   e.ctrs.path(c.rec.ID, "resolv.conf"),
		hostnamePath: e.ctrs.path(c.rec.ID, "hostname"),
	}
	if s.hostname == "" {
		s.hostname = c.rec.ID[:12]
	}
	switch {
	case mode == "host":
		s.netns = "host"
		if c.rec.Config.Hostname == "" {
			s.hostname, _ = os.Hostname()
		}
		hosts, _ := os.ReadFile("/etc/hosts")
		return s, e.writeNetFiles(c, s, hosts, nil)
	case strings.HasPrefix(mode, "container:"):
		other, err := e.ctrs.get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return s, err
		}
		if other == c {
			return s, fmt.Errorf("cannot join own network namespace: %w", errdefs.ErrInvalid)
		}
		other.mu.Lock()
		running, otherMode, otherID := other.rec.State.Running, string(other.rec.HostConfig.NetworkMode), other.rec.ID
		other.mu.Unlock()
		if !running {
			return s, fmt.Errorf("cannot join network namespace of a non running container: container %s is not running: %w", otherID[:12], errdefs.ErrConflict)
		}
		s.netns = e.netnsPath(otherID)
		if otherMode == "host" {
			s.netns = "host"
		}
		// Share the other container's name resolution files, as Docker does.
		s.hostsPath = e.ctrs.path(otherID, "hosts")
		s.resolvPath = e.ctrs.path(otherID, "resolv.conf")
		s.hostnamePath = e.ctrs.path(otherID, "hostname")
		return s, nil
	}

	s.netns = e.netnsPath(c.rec.ID)
	if err := netns.Create(s.netns); err != nil {
		return s, fmt.Errorf("network namespace: %w", err)
	}
	*undo = append(*undo, func() { e.releaseNetwork(context.WithoutCancel(ctx), c) })
	if mode == "none" {
		return s, e.writeNetFiles(c, s, nil, nil)
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.rec.Networks {
			if n != mode && !yield(n) {
				return
			}
		}
	})
	names = append([]string{mode}, names...)
	var hostsLines [][]byte
	var nameservers []string
	c.rec.Ports = network.PortMap{}
	for i, name := range names {
		settings := c.rec.Networks[name]
		n, err := e.network(name)
		if err != nil {
			return s, err
		}
		req := bridge.AttachRequest{
			NetworkID:   n.ID,
			ContainerID: c.rec.ID,
			NetNS:       s.netns,
			IfName:      "eth" + strconv.Itoa(i),
			Names:       dnsNames(c, settings),
		}
		if settings.IPAMConfig != nil && settings.IPAMConfig.IPv4Address.IsValid() {
			req.IP = settings.IPAMConfig.IPv4Address.String()
		}
		if i == 0 {
			ports, err := e.portMappings(c)
			if err != nil {
				return s, err
			}
			req.Ports = ports
		}
		ep, err := e.opts.Networks.Attach(ctx, req)
		if err != nil {
			return s, fmt.Errorf("attach to network %s: %w", n.Name, err)
		}
		settings.NetworkID = n.ID
		settings.EndpointID = c.rec.ID[:12] + "-" + n.ID[:12]
		settings.IPAddress, _ = netip.ParseAddr(ep.IP)
		settings.Gateway, _ = netip.ParseAddr(ep.Gateway)
		settings.IPPrefixLen = ep.PrefixLen
		settings.MacAddress = network.HardwareAddr(parseMAC(ep.MAC))
		settings.DNSNames = req.Names
		for _, p := range ep.Ports {
			port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto))
			if err != nil {
				continue
			}
			hostIP, _ := netip.ParseAddr(p.HostIP)
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			c.rec.Ports[port] = append(c.rec.Ports[port], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
		}
		hostsLines = append(hostsLines, []byte(ep.IP+"\t"+s.hostname))
		if dns := e.opts.Networks.DNSServer(n.ID); dns != "" && !slices.Contains(nameservers, dns) {
			nameservers = append(nameservers, dns)
		}
	}
	if len(hostsLines) > 0 {
		hostsLines = hostsLines[:1]
	}
	return s, e.writeNetFiles(c, s, bytes.Join(hostsLines, []byte("\n")), nameservers)
}

func dnsNames(c *ctr, s *network.EndpointSettings) []string {
	names := []string{c.rec.Name, c.rec.ID[:12]}
	if c.rec.Config.Hostname != "" {
		names = append(names, c.rec.Config.Hostname)
	}
	if s != nil {
		names = append(names, s.Aliases...)
	}
	return names
}

func parseMAC(s string) []byte {
	var out []byte
	for _, part := range strings.Split(s, ":") {
		v, err := strconv.ParseUint(part, 16, 8)
		if err != nil {
			return nil
		}
		out = append(out, byte(v))
	}
	return out
}

// portMappings turns -p and -P into bridge port mappings.
func (e *Engine) portMappings(c *ctr) ([]bridge.PortMapping, error) {
	hc := c.rec.HostConfig
	var out []bridge.PortMapping
	for port, bindings := range hc.PortBindings {
		if len(bindings) == 0 {
			bindings = []network.PortBinding{{}}
		}
		for _, b := range bindings {
			m := bridge.PortMapping{Proto: string(port.Proto()), ContainerPort: port.Num()}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				m.HostIP = b.HostIP.String()
			}
			if b.HostPort != "" {
				hp, err := parseHostPort(b.HostPort)
				if err != nil {
					return nil, err
				}
				m.HostPort = hp
			}
			out = append(out, m)
		}
	}
	if hc.PublishAllPorts {
		for port := range c.rec.Config.ExposedPorts {
			if _, ok := hc.PortBindings[port]; !ok {
				out = append(out, bridge.PortMapping{Proto: string(port.Proto()), ContainerPort: port.Num()})
			}
		}
	}
	slices.SortFunc(out, func(a, b bridge.PortMapping) int {
		return int(a.ContainerPort) - int(b.ContainerPort)
	})
	return out, nil
}

// writeNetFiles writes /etc/hosts, /etc/resolv.conf and /etc/hostname for
// the container. hostEntries are extra lines for /etc/hosts.
func (e *Engine) writeNetFiles(c *ctr, s netSetup, hostEntries []byte, nameservers []string) error {
	hc := c.rec.HostConfig
	var hosts bytes.Buffer
	if string(hc.NetworkMode) == "host" {
		hosts.Write(hostEntries)
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		if len(hostEntries) > 0 {
			hosts.Write(hostEntries)
			hosts.WriteString("\n")
		}
	}
	for _, h := range hc.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok {
			return fmt.Errorf("invalid extra host %q: want NAME:IP: %w", h, errdefs.ErrInvalid)
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	resolv, err := e.resolvConf(hc, nameservers)
	if err != nil {
		return err
	}
	for path, data := range map[string][]byte{
		s.hostsPath:    hosts.Bytes(),
		s.resolvPath:   resolv,
		s.hostnamePath: []byte(s.hostname + "\n"),
	} {
		if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

func (e *Engine) resolvConf(hc *container.HostConfig, nameservers []string) ([]byte, error) {
	host, _ := os.ReadFile(e.opts.HostResolvConf)
	var search, options []string
	var hostNS []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				hostNS = append(hostNS, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(nameservers) == 0 {
		nameservers = hostNS
	}
	if len(hc.DNS) > 0 {
		nameservers = nil
		for _, a := range hc.DNS {
			nameservers = append(nameservers, a.String())
		}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	var b bytes.Buffer
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), nil
}

// releaseNetwork detaches the container from its networks and removes its
// network namespace. Idempotent. Call with c.mu held.
func (e *Engine) releaseNetwork(ctx context.Context, c *ctr) {
	for name, s := range c.rec.Networks {
		id := s.NetworkID
		if id == "" {
			n, err := e.network(name)
			if err != nil {
				continue
			}
			id = n.ID
		}
		if err := e.opts.Networks.Detach(ctx, id, c.rec.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			e.log.Warn("detach from network", "id", c.rec.ID, "network", name, "err", err)
		}
		c.rec.Networks[name] = &network.EndpointSettings{
			IPAMConfig: s.IPAMConfig, Aliases: s.Aliases, Links: s.Links, DriverOpts: s.DriverOpts,
		}
	}
	c.rec.Ports = nil
	if err := netns.Delete(e.netnsPath(c.rec.ID)); err != nil {
		e.log.Warn("remove network namespace", "id", c.rec.ID, "err", err)
	}
}
