package bridge

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// forgetFlows deletes the conntrack entries matching any of filters, so that
// flows set up under old rules do not keep steering packets the old way.
// Best effort: a failure is logged.
func (m *Manager) forgetFlows(filters ...netlink.CustomConntrackFilter) {
	if len(filters) == 0 {
		return
	}
	if _, err := m.nl.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...); err != nil {
		m.log.Warn("delete conntrack entries", "err", err)
	}
}

// containerFlows match the flows of a container's address: those it began
// (masqueraded or not) and those to it (DNATed or not).
func containerFlows(ip netip.Addr) []netlink.CustomConntrackFilter {
	var from, to netlink.ConntrackFilter
	_ = from.AddIP(netlink.ConntrackOrigSrcIP, net.IP(ip.AsSlice()))
	_ = to.AddIP(netlink.ConntrackReplySrcIP, net.IP(ip.AsSlice()))
	return []netlink.CustomConntrackFilter{&from, &to}
}

// udpPortFlows match UDP flows to newly published host ports that began
// before the mapping existed: UDP clients that keep sending from the same
// port would otherwise never be DNATed (Docker clears these too).
func udpPortFlows(ports []PortMapping) []netlink.CustomConntrackFilter {
	var out []netlink.CustomConntrackFilter
	for _, p := range ports {
		if p.Proto != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		_ = f.AddProtocol(unix.IPPROTO_UDP)
		_ = f.AddPort(netlink.ConntrackOrigDstPort, p.HostPort)
		out = append(out, f)
	}
	return out
}
