package proxy

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

// UDP has no connection to end: conntrack keeps steering a client's
// datagrams the way its first one went. So, as kube-proxy does, when a UDP
// endpoint goes its flows are deleted (the next datagram picks a live
// endpoint), and when a UDP Service port gains endpoints the flows that
// went nowhere (not DNATed) are deleted so that the next datagram is.

// forgetFlows deletes the UDP conntrack entries that the change of the
// Services in cur (from old; both may lack a key) left pointing the wrong
// way. Best effort: a failure is logged.
func (l *loop) forgetFlows(old, cur map[types.NamespacedName]*serviceRules) {
	var filters []netlink.CustomConntrackFilter
	keys := map[types.NamespacedName]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	for k := range keys {
		filters = append(filters, staleFlows(old[k], cur[k])...)
	}
	if len(filters) == 0 {
		return
	}
	n, err := l.nl.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		l.p.log.Warn("delete stale UDP flows", "err", err)
		return
	}
	l.p.log.Debug("deleted stale UDP flows", "flows", n)
}

// staleFlows are filters for the UDP flows a change of one Service's
// rules leaves stale.
func staleFlows(old, cur *serviceRules) []netlink.CustomConntrackFilter {
	type dest struct {
		addr netip.Addr // invalid for a NodePort (any local address)
		port uint16
	}
	targets := func(sr *serviceRules) map[dest]map[netip.AddrPort]bool {
		out := map[dest]map[netip.AddrPort]bool{}
		if sr == nil {
			return out
		}
		add := func(d dest, eps []netip.AddrPort) {
			m := out[d]
			if m == nil {
				m = map[netip.AddrPort]bool{}
				out[d] = m
			}
			for _, e := range eps {
				m[e] = true
			}
		}
		for _, u := range sr.udp {
			for _, a := range u.addrs {
				add(dest{a, u.port}, u.endpoints)
			}
			if u.nodePort != 0 {
				add(dest{port: u.nodePort}, u.endpoints)
			}
		}
		return out
	}
	was, is := targets(old), targets(cur)
	var out []netlink.CustomConntrackFilter
	for d, eps := range was {
		for e := range eps {
			if !is[d][e] {
				out = append(out, &flowFilter{dst: d.addr, dport: d.port, endpoint: e})
			}
		}
	}
	for d, eps := range is {
		if len(eps) > 0 && len(was[d]) == 0 {
			out = append(out, &flowFilter{dst: d.addr, dport: d.port, unNATed: true})
		}
	}
	return out
}

// flowFilter matches UDP flows to dst:dport (any address when dst is
// invalid) that were DNATed to endpoint, or, with unNATed, that were not
// DNATed at all.
type flowFilter struct {
	dst      netip.Addr
	dport    uint16
	endpoint netip.AddrPort
	unNATed  bool
}

func (f *flowFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	fw, rv := flow.Forward, flow.Reverse
	if fw.Protocol != unix.IPPROTO_UDP || fw.DstPort != f.dport {
		return false
	}
	if f.dst.IsValid() && !fw.DstIP.Equal(net.IP(f.dst.AsSlice())) {
		return false
	}
	if f.unNATed {
		return rv.SrcIP.Equal(fw.DstIP) && rv.SrcPort == fw.DstPort
	}
	return rv.SrcIP.Equal(net.IP(f.endpoint.Addr().AsSlice())) && rv.SrcPort == f.endpoint.Port()
}
