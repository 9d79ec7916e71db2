package proxy

import (
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// Names of the table's fixed chains, maps and sets.
const (
	chainServices        = "services"
	chainEndpointsCheck  = "endpoints-check"
	chainClusterIPsCheck = "cluster-ips-check"
	chainReject          = "reject-chain"
	chainMarkMasq        = "mark-for-masquerade"
	chainMasquerading    = "masquerading"

	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	setClusterIPs          = "cluster-ips"
)

// config is what the rules depend on besides Services and EndpointSlices.
type config struct {
	table    string
	nodeName string
	zone     string // the node's topology.kubernetes.io/zone
	// podCIDR holds every pod of the cluster; invalid when unknown (then
	// nothing is masqueraded for coming from outside it).
	podCIDR netip.Prefix
	// serviceCIDR: traffic to an address in it that no Service has is
	// dropped; invalid for none.
	serviceCIDR netip.Prefix
	// nodePortCIDRs limit the local addresses NodePorts answer on; nil
	// for all but loopback.
	nodePortCIDRs []netip.Prefix
}

func (c *config) equal(o *config) bool {
	return c.table == o.table && c.nodeName == o.nodeName && c.zone == o.zone &&
		c.podCIDR == o.podCIDR && c.serviceCIDR == o.serviceCIDR &&
		(c.nodePortCIDRs == nil) == (o.nodePortCIDRs == nil) && slices.Equal(c.nodePortCIDRs, o.nodePortCIDRs)
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// fixedSets are the maps and sets every table has.
var fixedSets = []setDef{
	{name: setClusterIPs, key: keyAddr, comment: "active ClusterIPs"},
	{name: mapNoEndpointNodePorts, key: keyProtoPort, vmap: true, comment: "NodePorts of Services without usable endpoints"},
	{name: mapNoEndpointServices, key: keyAddrProtoPort, vmap: true, comment: "Service IPs and ports without usable endpoints"},
	{name: mapServiceIPs, key: keyAddrProtoPort, vmap: true, comment: "ClusterIP, external IP and load-balancer IP traffic"},
	{name: mapServiceNodePorts, key: keyProtoPort, vmap: true, comment: "NodePort traffic"},
}

// baseChains are the table's hooks. Filtering runs just before DNAT (to
// see the Service address) and, for cluster-ips-check, after it (only
// traffic that no Service rule took still goes to a ClusterIP).
func baseChains() []baseChain {
	newJump := r(ctStateNew{}, jump(chainEndpointsCheck))
	newCIPs := r(ctStateNew{}, jump(chainClusterIPsCheck))
	prio := func(p int32) nftables.ChainPriority { return nftables.ChainPriority(p) }
	return []baseChain{
		{"filter-input", nftables.ChainTypeFilter, nftables.ChainHookInput, "input", prio(-110), "dstnat - 10", []rule{newJump}},
		{"filter-forward", nftables.ChainTypeFilter, nftables.ChainHookForward, "forward", prio(-110), "dstnat - 10", []rule{newJump, newCIPs}},
		{"filter-output", nftables.ChainTypeFilter, nftables.ChainHookOutput, "output", prio(-110), "dstnat - 10", []rule{newJump}},
		{"filter-output-post-dnat", nftables.ChainTypeFilter, nftables.ChainHookOutput, "output", prio(-90), "dstnat + 10", []rule{newCIPs}},
		{"nat-prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, "prerouting", prio(-100), "dstnat", []rule{r(jump(chainServices))}},
		{"nat-output", nftables.ChainTypeNAT, nftables.ChainHookOutput, "output", prio(-100), "dstnat", []rule{r(jump(chainServices))}},
		{"nat-postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, "postrouting", prio(100), "srcnat", []rule{r(jump(chainMasquerading))}},
	}
}

// fixedChains are the regular chains every table has, sorted by name.
func fixedChains(cfg *config) []*chain {
	// nodePort prefixes stmts with the match for "an address NodePorts
	// answer on": one rule per NodePortAddresses CIDR.
	nodePort := func(stmts ...stmt) []rule {
		if cfg.nodePortCIDRs == nil {
			return []rule{r(append([]stmt{fibLocal(daddr), ipNotIn(daddr, loopback)}, stmts...)...)}
		}
		var out []rule
		for _, p := range cfg.nodePortCIDRs {
			out = append(out, r(append([]stmt{ipIn(daddr, p), fibLocal(daddr)}, stmts...)...))
		}
		return out
	}
	cipsCheck := []rule{
		r(ipInSet{daddr, setClusterIPs}, goTo(chainReject)).withComment("no such port on a ClusterIP"),
	}
	if cfg.serviceCIDR.IsValid() {
		cipsCheck = append(cipsCheck, r(ipIn(daddr, cfg.serviceCIDR), drop()).withComment("unallocated ClusterIP"))
	}
	return []*chain{
		{chainClusterIPsCheck, cipsCheck},
		{chainEndpointsCheck, append(
			[]rule{r(vmapLookup{withAddr: true, vmap: mapNoEndpointServices})},
			nodePort(vmapLookup{vmap: mapNoEndpointNodePorts})...)},
		{chainMarkMasq, []rule{r(markSet{})}},
		{chainMasquerading, []rule{
			r(markUnset{}, returnVerdict()),
			r(markSet{clear: true}),
			r(masquerade{}),
		}},
		{chainReject, []rule{
			r(l4proto(protoTCP), reject{tcpReset: true}),
			r(reject{}),
		}},
		{chainServices, append(
			[]rule{r(vmapLookup{withAddr: true, vmap: mapServiceIPs})},
			nodePort(vmapLookup{vmap: mapServiceNodePorts})...)},
	}
}

// isFixedChain reports whether name is a base or fixed chain.
func isFixedChain(name string) bool {
	switch name {
	case chainServices, chainEndpointsCheck, chainClusterIPsCheck, chainReject, chainMarkMasq, chainMasquerading:
		return true
	}
	for _, b := range baseChains() {
		if b.name == name {
			return true
		}
	}
	return false
}
