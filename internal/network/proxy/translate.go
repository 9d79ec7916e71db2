package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// LabelServiceProxyName on a Service hands it to another proxy: Skiff's
// ignores it, as kube-proxy does.
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// defaultAffinityTimeout is Kubernetes' default ClientIP affinity timeout.
const defaultAffinityTimeout = 10800 * time.Second

// Prefixes of the per-Service chains and sets. Their names also hold a
// "/" (namespace/name/protocol/port), which no fixed name does.
const (
	prefixCluster  = "svc-"    // policy Cluster: spread over all usable endpoints
	prefixLocal    = "local-"  // policy Local: this node's endpoints
	prefixExternal = "ext-"    // NodePort, external and load-balancer IPs
	prefixEndpoint = "ep-"     // one endpoint: hairpin, affinity, DNAT
	prefixAffinity = "aff-"    // ClientIP affinity of one endpoint
	prefixSpread   = "spread-" // a policy chain's endpoints: numgen index → endpoint chain
)

// isSpreadMap reports whether a set name is a policy chain's spread map.
func isSpreadMap(name string) bool { return strings.HasPrefix(name, prefixSpread) }

// maxNameLen is nftables' limit on chain and set names (NUL excluded).
const maxNameLen = 255

// serviceRules is what one Service contributes to the table.
type serviceRules struct {
	chains []*chain  // sorted by name
	sets   []string  // affinity sets, sorted
	elems  elems     // its elements of the fixed sets and maps
	udp    []udpPort // for conntrack clean-up
}

// skeleton is what the state keeps of a Service's rules once they are in
// the kernel: the names of its chains (their sums are in the state), not
// their rules.
func (sr *serviceRules) skeleton() *serviceRules {
	out := *sr
	out.chains = make([]*chain, len(sr.chains))
	for i, c := range sr.chains {
		out.chains[i] = &chain{name: c.name}
	}
	return &out
}

// udpPort is a UDP Service port as conntrack clean-up needs it.
type udpPort struct {
	addrs     []netip.Addr // ClusterIP, external and load-balancer IPs
	port      uint16
	nodePort  uint16
	endpoints []netip.AddrPort // DNAT targets
}

// proxied reports whether the proxy programs rules for svc: not
// ExternalName, not headless, not handed to another proxy, with an IPv4
// ClusterIP.
func proxied(svc *corev1.Service) (netip.Addr, bool) {
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return netip.Addr{}, false
	}
	if _, ok := svc.Labels[LabelServiceProxyName]; ok {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() || ip.IsUnspecified() {
		return netip.Addr{}, false // "", "None", IPv6, garbage
	}
	return ip, true
}

// translateService computes a Service's chains, sets and elements from it
// and its EndpointSlices; nil when it gets no rules.
func translateService(svc *corev1.Service, sls []*discoveryv1.EndpointSlice, cfg *config) *serviceRules {
	cip, ok := proxied(svc)
	if !ok {
		return nil
	}
	out := &serviceRules{elems: elems{{set: setClusterIPs, addr: cip}: {}}}
	external := parseIPv4s(svc.Spec.ExternalIPs)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		// ipMode Proxy: the load balancer delivers to the node, not to
		// the address; capturing it here would bypass the balancer.
		if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
			continue
		}
		external = append(external, parseIPv4s([]string{ing.IP})...)
	}
	slices.SortFunc(external, netip.Addr.Compare)
	external = slices.Compact(external)

	affinity := time.Duration(0)
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil &&
			*c.ClientIP.TimeoutSeconds > 0 {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	seen := map[string]bool{}
	for _, sp := range svc.Spec.Ports {
		proto, ok := protoNumber(sp.Protocol)
		if !ok || sp.Port <= 0 || sp.Port > 65535 || sp.NodePort < 0 || sp.NodePort > 65535 {
			continue
		}
		base := fmt.Sprintf("%s/%s/%s/%s", svc.Namespace, svc.Name, protoName(proto), sp.Name)
		if seen[base] {
			continue // the API forbids it; the chains would clash
		}
		seen[base] = true
		p := portRules{
			svc: svc, cfg: cfg, out: out, base: base, proto: proto,
			port: uint16(sp.Port), nodePort: uint16(sp.NodePort),
			clusterIP: cip, external: external, affinity: affinity,
			eps: endpointsOf(sls, sp.Name, protocolOf(proto), cfg.nodeName),
		}
		p.translate()
	}
	slices.SortFunc(out.chains, func(a, b *chain) int { return compareChainNames(a.name, b.name) })
	slices.Sort(out.sets)
	return out
}

// compareChainNames orders a Service's chains for reading: policy chains,
// then external, then endpoints; by port, then endpoint address.
func compareChainNames(a, b string) int {
	rank := func(n string) (int, string) {
		for i, p := range []string{prefixCluster, prefixLocal, prefixExternal, prefixEndpoint} {
			if strings.HasPrefix(n, p) && len(n) > len(p)+9 {
				return i, n[len(p)+9:] // past "HASHHASH-"
			}
		}
		return 9, n
	}
	ra, ba := rank(a)
	rb, bb := rank(b)
	if ra != rb {
		return ra - rb
	}
	return strings.Compare(ba, bb)
}

// portRules translates one Service port.
type portRules struct {
	svc       *corev1.Service
	cfg       *config
	out       *serviceRules
	base      string // namespace/name/protocol/portname
	proto     uint8
	port      uint16
	nodePort  uint16
	clusterIP netip.Addr
	external  []netip.Addr // externalIPs and load-balancer IPs
	affinity  time.Duration
	eps       []endpoint
}

// translate lays the port out as kube-proxy's nftables mode does: the
// service-ips and service-nodeports maps dispatch to a policy chain (svc-
// or local-) or, for external traffic, to an ext- chain; the policy chain
// spreads over ep- chains that DNAT; what has no usable endpoint goes to
// the no-endpoint maps instead (reject, or drop when only a Local policy
// finds none here).
func (p *portRules) translate() {
	spec := p.svc.Spec
	externallyReachable := p.nodePort != 0 || len(p.external) > 0
	internalLocal := spec.InternalTrafficPolicy != nil && *spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := externallyReachable && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	usesCluster := !internalLocal || (externallyReachable && !externalLocal)
	usesLocal := internalLocal || externalLocal
	cat := categorize(p.eps, usesCluster, usesLocal, p.cfg.nodeName, p.cfg.zone)

	clusterChain := chainName(prefixCluster, p.base)
	localChain := chainName(prefixLocal, p.base)
	extChain := chainName(prefixExternal, p.base)
	usesClusterChain := usesCluster && len(cat.cluster) > 0
	usesLocalChain := usesLocal && len(cat.local) > 0

	internalChain, hasInternal := clusterChain, cat.any
	if internalLocal {
		internalChain, hasInternal = localChain, len(cat.local) > 0
	}
	externalChain, hasExternal := clusterChain, cat.any
	if externalLocal {
		externalChain, hasExternal = localChain, len(cat.local) > 0
	}
	// No endpoint anywhere: reject. Endpoints, but none here for a Local
	// policy: drop (as kube-proxy; a load balancer's health check steers
	// away from this node).
	internalMiss, externalMiss := goTo(chainReject), goTo(chainReject)
	if cat.any {
		internalMiss, externalMiss = drop(), drop()
	}

	ipKey := func(set string, a netip.Addr) elemKey {
		return elemKey{set: set, addr: a, proto: p.proto, port: p.port}
	}
	if hasInternal {
		p.out.elems[ipKey(mapServiceIPs, p.clusterIP)] = goTo(internalChain)
	} else {
		p.out.elems[ipKey(mapNoEndpointServices, p.clusterIP)] = internalMiss
	}
	for _, a := range p.external {
		if cat.any {
			p.out.elems[ipKey(mapServiceIPs, a)] = goTo(extChain)
		}
		if !hasExternal {
			p.out.elems[ipKey(mapNoEndpointServices, a)] = externalMiss
		}
	}
	if p.nodePort != 0 {
		k := elemKey{proto: p.proto, port: p.nodePort}
		if cat.any {
			k.set = mapServiceNodePorts
			p.out.elems[k] = goTo(extChain)
		}
		if !hasExternal {
			k.set = mapNoEndpointNodePorts
			p.out.elems[k] = externalMiss
		}
	}

	// Traffic to the ClusterIP from outside the pod network (the node
	// itself, a route to the service range) leaves masqueraded, so that
	// replies come back through this node.
	var internalMasq []rule
	if hasInternal && p.cfg.podCIDR.IsValid() {
		internalMasq = []rule{r(ipIs(daddr, p.clusterIP), ipNotIn(saddr, p.cfg.podCIDR), jump(chainMarkMasq))}
	}
	if usesClusterChain {
		var pre []rule
		if internalChain == clusterChain {
			pre = internalMasq
		}
		p.addChain(clusterChain, append(pre, p.spread(clusterChain, cat.cluster)...))
	}
	if usesLocalChain {
		var pre []rule
		if internalChain == localChain {
			pre = internalMasq
		}
		p.addChain(localChain, append(pre, p.spread(localChain, cat.local)...))
	}
	if cat.any && externallyReachable {
		p.addChain(extChain, p.externalRules(externalLocal, hasExternal, externalChain, usesClusterChain, usesLocalChain, clusterChain, localChain))
	}
	for _, e := range cat.reachable {
		name := p.endpointChain(e)
		rules := []rule{r(ipIs(saddr, e.addr.Addr()), jump(chainMarkMasq)).withComment("hairpin")}
		if p.affinity > 0 {
			set := p.affinitySet(e)
			p.out.sets = append(p.out.sets, set)
			rules = append(rules, r(updateSaddr{set, p.affinity}))
		}
		rules = append(rules, r(l4proto(p.proto), dnat(e.addr)))
		p.addChain(name, rules)
	}
	if p.proto == protoUDP {
		u := udpPort{addrs: append([]netip.Addr{p.clusterIP}, p.external...), port: p.port, nodePort: p.nodePort}
		for _, e := range cat.reachable {
			u.endpoints = append(u.endpoints, e.addr)
		}
		p.out.udp = append(p.out.udp, u)
	}
}

// externalRules are the ext- chain: traffic policy Cluster masquerades
// (the endpoint may be on another node); Local keeps the client's address,
// except for pods and the node itself, which are not subject to the policy
// (as if they went out to a load balancer and came back).
func (p *portRules) externalRules(local, hasEndpoints bool, policyChain string, usesCluster, usesLocal bool, clusterChain, localChain string) []rule {
	var rules []rule
	if !local {
		rules = append(rules, r(jump(chainMarkMasq)))
	} else {
		short := ""
		switch {
		case usesCluster:
			short = clusterChain
		case usesLocal:
			short = localChain
		}
		if short != "" {
			if p.cfg.podCIDR.IsValid() {
				rules = append(rules, r(ipIn(saddr, p.cfg.podCIDR), goTo(short)).withComment("short-circuit pod traffic"))
			}
			rules = append(rules,
				r(fibLocal(saddr), jump(chainMarkMasq)).withComment("masquerade local traffic"),
				r(fibLocal(saddr), goTo(short)).withComment("short-circuit local traffic"),
			)
		}
	}
	if hasEndpoints {
		rules = append(rules, r(goTo(policyChain)))
	}
	return rules
}

// spread are a policy chain's rules: clients with an affinity entry go
// back to their endpoint, the rest are spread at random through the
// chain's spread map (its elements are the Service's, so that replacing
// an endpoint changes elements, not rules).
func (p *portRules) spread(policyChain string, eps []endpoint) []rule {
	var rules []rule
	if p.affinity > 0 {
		for _, e := range eps {
			rules = append(rules, r(ipInSet{saddr, p.affinitySet(e)}, goTo(p.endpointChain(e))))
		}
	}
	if len(eps) == 1 {
		return append(rules, r(goTo(p.endpointChain(eps[0]))))
	}
	m := spreadMapName(policyChain)
	p.out.sets = append(p.out.sets, m)
	for i, e := range eps {
		p.out.elems[elemKey{set: m, index: uint32(i)}] = goTo(p.endpointChain(e))
	}
	return append(rules, r(numgenVmap{n: len(eps), vmap: m}))
}

func spreadMapName(policyChain string) string {
	name := prefixSpread + policyChain
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	return name
}

func (p *portRules) addChain(name string, rules []rule) {
	p.out.chains = append(p.out.chains, &chain{name: name, rules: rules})
}

func (p *portRules) endpointBase(e endpoint) string {
	return p.base + "__" + e.addr.Addr().String() + "/" + fmt.Sprint(e.addr.Port())
}

func (p *portRules) endpointChain(e endpoint) string {
	return chainName(prefixEndpoint, p.endpointBase(e))
}

func (p *portRules) affinitySet(e endpoint) string {
	return chainName(prefixAffinity, p.endpointBase(e))
}

// chainName is prefix, a hash of base (so that names stay unique and
// distinguishable when long) and base, within nftables' limit.
func chainName(prefix, base string) string {
	sum := sha256.Sum256([]byte(base))
	name := prefix + base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + base
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	return name
}

// isServiceObject reports whether a chain or set name is one of a
// Service's (as opposed to a fixed one).
func isServiceObject(name string) bool { return strings.Contains(name, "/") }

func protoNumber(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return protoTCP, true
	case corev1.ProtocolUDP:
		return protoUDP, true
	case corev1.ProtocolSCTP:
		return protoSCTP, true
	}
	return 0, false
}

func protocolOf(p uint8) corev1.Protocol {
	switch p {
	case protoUDP:
		return corev1.ProtocolUDP
	case protoSCTP:
		return corev1.ProtocolSCTP
	}
	return corev1.ProtocolTCP
}

func parseIPv4s(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}
