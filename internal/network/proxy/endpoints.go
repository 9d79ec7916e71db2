package proxy

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// endpoint is one backend of one Service port.
type endpoint struct {
	addr                        netip.AddrPort
	ready, serving, terminating bool
	local                       bool // on this node
	zones, nodes                []string
}

// rank orders duplicates of one address: the most usable wins.
func (e endpoint) rank() int {
	switch {
	case e.ready:
		return 2
	case e.serving:
		return 1
	}
	return 0
}

// endpointsOf collects the IPv4 endpoints of the Service port (name,
// proto) from the Service's slices: the port number comes from each
// slice's port of that name, so named target ports resolve per slice.
// Duplicates (an endpoint moving between slices) collapse to the most
// usable copy; the result is sorted by address.
func endpointsOf(sls []*discoveryv1.EndpointSlice, portName string, proto corev1.Protocol, nodeName string) []endpoint {
	byAddr := map[netip.AddrPort]endpoint{}
	for _, sl := range sls {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(sl, portName, proto)
		if !ok {
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !a.Is4() {
				continue
			}
			e := endpoint{addr: netip.AddrPortFrom(a, port)}
			c := ep.Conditions
			e.ready = c.Ready == nil || *c.Ready
			e.serving = e.ready
			if c.Serving != nil {
				e.serving = *c.Serving
			}
			e.terminating = c.Terminating != nil && *c.Terminating
			e.local = nodeName != "" && ep.NodeName != nil && *ep.NodeName == nodeName
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					e.zones = append(e.zones, z.Name)
				}
				for _, n := range ep.Hints.ForNodes {
					e.nodes = append(e.nodes, n.Name)
				}
			}
			if old, ok := byAddr[e.addr]; !ok || e.rank() > old.rank() {
				byAddr[e.addr] = e
			}
		}
	}
	out := make([]endpoint, 0, len(byAddr))
	for _, e := range byAddr {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return out
}

// slicePort finds the slice's port number for a Service port.
func slicePort(sl *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, p := range sl.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pn == name && pp == proto && p.Port != nil && *p.Port > 0 && *p.Port <= 65535 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

// categorized are a Service port's endpoints sorted by the traffic
// policies that use them.
type categorized struct {
	cluster   []endpoint // for traffic policy Cluster (nil if unused)
	local     []endpoint // for traffic policy Local (nil if unused)
	reachable []endpoint // cluster ∪ local: every endpoint chain needed
	// any: the Service has a usable endpoint somewhere in the cluster.
	any bool
}

// categorize picks the usable endpoints the way kube-proxy does: ready
// ones, or — when a policy has no ready ones — the serving terminating
// ones; Cluster policy honours topology hints when every ready endpoint
// has them and some are for this node (or its zone).
func categorize(eps []endpoint, usesCluster, usesLocal bool, nodeName, zone string) categorized {
	var c categorized
	if len(eps) == 0 {
		return c
	}
	hinted := false
	if usesCluster {
		use := topologyFilter(eps, nodeName, zone)
		hinted = use != nil
		c.cluster = filter(eps, func(e endpoint) bool { return e.ready && (use == nil || use(e)) })
		if len(c.cluster) == 0 {
			c.cluster = filter(eps, func(e endpoint) bool { return e.serving && e.terminating })
		}
		c.any = len(c.cluster) > 0
	}
	if !usesLocal {
		c.reachable = c.cluster
		return c
	}
	localReady, localTerminating := false, false
	for _, e := range eps {
		switch {
		case e.ready:
			c.any = true
			localReady = localReady || e.local
		case e.serving && e.terminating:
			c.any = true
			localTerminating = localTerminating || e.local
		}
	}
	fallback := false
	switch {
	case localReady:
		c.local = filter(eps, func(e endpoint) bool { return e.local && e.ready })
	case localTerminating:
		fallback = true
		c.local = filter(eps, func(e endpoint) bool { return e.local && e.serving && e.terminating })
	}
	if !usesCluster {
		c.reachable = c.local
		return c
	}
	if !hinted && !fallback {
		// cluster holds every ready endpoint, so every local one too.
		c.reachable = c.cluster
		return c
	}
	seen := map[netip.AddrPort]bool{}
	for _, e := range slices.Concat(c.cluster, c.local) {
		if !seen[e.addr] {
			seen[e.addr] = true
			c.reachable = append(c.reachable, e)
		}
	}
	slices.SortFunc(c.reachable, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return c
}

// topologyFilter returns which endpoints topology hints leave this node
// (same node first, then same zone), or nil when hints do not apply: some
// ready endpoint lacks them, or none is for this node or zone.
func topologyFilter(eps []endpoint, nodeName, zone string) func(endpoint) bool {
	anyReady := false
	allNodes, forNode := true, false
	allZones, forZone := true, false
	for _, e := range eps {
		if !e.ready {
			continue
		}
		anyReady = true
		if len(e.nodes) == 0 {
			allNodes = false
		} else if slices.Contains(e.nodes, nodeName) {
			forNode = true
		}
		if len(e.zones) == 0 {
			allZones = false
		} else if slices.Contains(e.zones, zone) {
			forZone = true
		}
	}
	switch {
	case !anyReady:
		return nil
	case allNodes && forNode && nodeName != "":
		return func(e endpoint) bool { return slices.Contains(e.nodes, nodeName) }
	case allZones && forZone && zone != "":
		return func(e endpoint) bool { return slices.Contains(e.zones, zone) }
	}
	return nil
}

func filter(eps []endpoint, keep func(endpoint) bool) []endpoint {
	out := make([]endpoint, 0, len(eps))
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
