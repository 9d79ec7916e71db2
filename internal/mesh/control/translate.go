package control

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/mesh/authz/fromistio"
	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// Translate computes the Sidecar document of the proxy in pod from snap.
// identity is the workload's certificate (nil: none yet). Warnings say
// what could not be used and why; the document is complete without it.
func Translate(snap *Snapshot, pod *corev1.Pod, identity *proxy.Identity, opts MeshOptions) (*meshconfig.Sidecar, []string) {
	return NewIndex(snap, opts).Translate(pod, identity)
}

// Translate computes the Sidecar document of the proxy in pod.
func (x *Index) Translate(pod *corev1.Pod, identity *proxy.Identity) (doc *meshconfig.Sidecar, warnings []string) {
	doc, _, warnings = x.TranslateJSON(pod, identity)
	return doc, warnings
}

// TranslateJSON is Translate that also returns the document's JSON
// encoding (what the node serves), made from encodings the index shares
// between proxies.
func (x *Index) TranslateJSON(pod *corev1.Pod, identity *proxy.Identity) (doc *meshconfig.Sidecar, body []byte, warnings []string) {
	defer func() {
		// The translation is meant never to panic; if it does anyway, the
		// proxy keeps its previous document and the warning says why.
		if r := recover(); r != nil {
			doc, body, warnings = nil, nil, []string{fmt.Sprintf("translation failed: %v", r)}
		}
	}()
	b := &builder{x: x, pod: pod, clusters: map[string]*proxy.Cluster{}, tables: map[string]*proxy.RouteTable{},
		encoded: map[string][]byte{}}
	b.warn = append(b.warn, x.errs...)
	b.sidecarScope()
	b.outbound()
	b.inbound()
	doc = &meshconfig.Sidecar{Workload: workloadOf(pod, x.opts.TrustDomain)}
	doc.Proxy.Listeners = []proxy.Listener{
		{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(meshconfig.OutboundPort), Capture: &proxy.Capture{
			Direction: proxy.Outbound, Chains: b.outChains, Unmatched: b.unmatched(),
		}},
		{Name: "virtualInbound", Address: "0.0.0.0:" + strconv.Itoa(meshconfig.InboundPort), Capture: &proxy.Capture{
			Direction: proxy.Inbound, Chains: b.inChains, Unmatched: proxy.Passthrough,
		}},
	}
	for _, name := range slices.Sorted(maps.Keys(b.tables)) {
		doc.Proxy.RouteTables = append(doc.Proxy.RouteTables, *b.tables[name])
	}
	for _, name := range slices.Sorted(maps.Keys(b.clusters)) {
		doc.Proxy.Clusters = append(doc.Proxy.Clusters, *b.clusters[name])
	}
	doc.Proxy.Identity = identity
	cfg, errs := fromistio.ForWorkload(pod.Namespace, pod.Labels, x.opts.RootNamespace,
		x.snap.AuthorizationPolicies, x.snap.RequestAuthentications)
	doc.Authz = cfg
	for _, err := range errs {
		b.warn = append(b.warn, "authorization: "+err.Error())
	}
	body, version, err := encode(doc, b.encoded)
	if err != nil {
		return nil, nil, append(b.warn, "encoding: "+err.Error())
	}
	doc.Version, doc.Proxy.Version = version, version
	return doc, body, b.warn
}

// builder is one proxy's translation in progress.
type builder struct {
	x        *Index
	pod      *corev1.Pod
	warn     []string
	clusters map[string]*proxy.Cluster
	// encoded are the JSON encodings of shared clusters.
	encoded map[string][]byte
	tables  map[string]*proxy.RouteTable
	// outChains: address-specific chains first, then port-only ones.
	outChains, portOnly []proxy.FilterChain
	inChains            []proxy.FilterChain
	// gateway is the gateway ("ns/name") being translated; "" for a
	// sidecar.
	gateway string
	// egress is the Sidecar resource's egress hosts (nil: all).
	egress    []string
	outPolicy OutboundPolicy
}

func (b *builder) warnf(format string, args ...any) {
	b.warn = append(b.warn, fmt.Sprintf(format, args...))
}

func (b *builder) unmatched() proxy.UnmatchedPolicy {
	if b.outPolicy == RegistryOnly {
		return proxy.Blackhole
	}
	return proxy.Passthrough
}

// ClusterName is Istio's cluster name: DIRECTION|PORT|SUBSET|HOST.
func ClusterName(direction proxy.Direction, port uint32, subset, host string) string {
	return string(direction) + "|" + strconv.Itoa(int(port)) + "|" + subset + "|" + host
}

func (b *builder) outbound() {
	sharedTables := map[uint32]*proxy.RouteTable{}
	portOnlyTCP := map[uint32]string{}
	for _, svc := range b.x.services {
		if !b.visible(svc) {
			continue
		}
		for i := range svc.ports {
			sp := &svc.ports[i]
			name := ClusterName(proxy.Outbound, sp.port, "", svc.host)
			addrs := svc.addresses
			if svc.headless {
				addrs = endpointIPs(sp.endpoints)
				if len(addrs) == 0 {
					continue
				}
			}
			chain := proxy.FilterChain{Name: name, Match: proxy.ChainMatch{Port: sp.port, Addresses: addrs}}
			switch {
			case svc.passthrough:
				// Empty target: the original destination.
			case sp.http && len(addrs) == 0:
				t := sharedTables[sp.port]
				if t == nil {
					t = &proxy.RouteTable{Name: "outbound|" + strconv.Itoa(int(sp.port))}
					sharedTables[sp.port] = t
					b.tables[t.Name] = t
					chain.Name = t.Name
					chain.RouteTable = t.Name
				} else {
					chain = proxy.FilterChain{}
				}
				t.VirtualHosts = append(t.VirtualHosts, proxy.VirtualHost{
					Name: svc.host + ":" + strconv.Itoa(int(sp.port)), Domains: []string{svc.host},
					Routes: b.httpRoutes(svc, sp),
				})
			case sp.http:
				t := &proxy.RouteTable{Name: name, VirtualHosts: []proxy.VirtualHost{{
					Name:    svc.host + ":" + strconv.Itoa(int(sp.port)),
					Domains: append(b.domains(svc), "*"),
					Routes:  b.httpRoutes(svc, sp),
				}}}
				b.tables[name] = t
				chain.RouteTable = name
			default:
				chain.TCPCluster = b.tcpTarget(svc, sp)
				if len(addrs) == 0 {
					if other, dup := portOnlyTCP[sp.port]; dup {
						b.warnf("%s: port %d on any address is already %s's; ignored", svc.host, sp.port, other)
						chain = proxy.FilterChain{}
					}
					portOnlyTCP[sp.port] = svc.host
				}
			}
			if chain.Name == "" {
				continue
			}
			if len(addrs) == 0 {
				b.portOnly = append(b.portOnly, chain)
			} else {
				b.outChains = append(b.outChains, chain)
			}
		}
	}
	// Exact addresses before CIDRs, so that a range never shadows a
	// service inside it; then the chains that match any address.
	slices.SortStableFunc(b.outChains, func(x, y proxy.FilterChain) int {
		return cmp.Compare(hasCIDR(x.Match.Addresses), hasCIDR(y.Match.Addresses))
	})
	b.outChains = append(b.outChains, b.portOnly...)
}

func hasCIDR(addrs []string) int {
	for _, a := range addrs {
		if strings.Contains(a, "/") {
			return 1
		}
	}
	return 0
}

func endpointIPs(eps []endpoint) []string {
	var out []string
	for _, e := range eps {
		if h, _, err := net.SplitHostPort(e.address); err == nil && net.ParseIP(h) != nil && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// domains are the names a request to svc may carry, as Istio's virtual
// host domains (without ports): the FQDN, its shorter forms (the bare
// name only from the service's own namespace) and the ClusterIPs.
func (b *builder) domains(svc *service) []string {
	if svc.name == "" {
		var out []string
		out = append(out, svc.host)
		for _, a := range svc.addresses {
			if net.ParseIP(a) != nil {
				out = append(out, a)
			}
		}
		return out
	}
	out := []string{svc.host, svc.name + "." + svc.namespace + ".svc", svc.name + "." + svc.namespace}
	if svc.namespace == b.pod.Namespace {
		out = append(out, svc.name)
	}
	for _, a := range svc.addresses {
		if ip := net.ParseIP(a); ip != nil {
			if ip.To4() == nil {
				a = "[" + a + "]"
			}
			out = append(out, a)
		}
	}
	return out
}

// cluster makes sure the cluster of svc's port (and subset) exists and
// returns its name. A subset the DestinationRules do not define gets an
// empty cluster (requests to it answer 503, "no healthy upstream", as
// Envoy's) and a warning.
func (b *builder) cluster(svc *service, sp *servicePort, subset string) string {
	name := ClusterName(proxy.Outbound, sp.port, subset, svc.host)
	if _, ok := b.clusters[name]; ok {
		return name
	}
	// A service's clusters are the same for every proxy: the index
	// builds each once.
	cc := b.x.outboundCluster(name, svc, sp, subset)
	b.warn = append(b.warn, cc.warnings...)
	b.clusters[name] = &cc.cluster
	b.encoded[name] = cc.json
	return name
}

// cachedCluster is an outbound cluster as every proxy gets it.
type cachedCluster struct {
	cluster  proxy.Cluster
	json     []byte
	warnings []string
}

func (x *Index) outboundCluster(name string, svc *service, sp *servicePort, subset string) *cachedCluster {
	if v, ok := x.clusterCache.Load(name); ok {
		return v.(*cachedCluster)
	}
	b := &builder{x: x}
	c := proxy.Cluster{Name: name, TCP: !sp.http}
	if sp.grpc {
		c.Protocol = proxy.ProtocolH2C
	}
	c.Metadata = map[string]string{"destination_service": svc.host}
	if svc.name != "" {
		c.Metadata["destination_service_name"] = svc.name
	} else {
		c.Metadata["destination_service_name"] = svc.host
	}
	c.Metadata["destination_service_namespace"] = svc.namespace
	if subset != "" {
		c.Metadata["destination_subset"] = subset
	}
	pol, labels, found := b.policy(svc, sp.port, subset)
	if subset != "" && !found {
		b.warnf("%s: subset %q is not defined by any DestinationRule; requests to it answer 503", svc.host, subset)
	} else {
		for _, e := range sp.endpoints {
			if subset != "" && !labelsMatch(labels, e.labels) {
				continue
			}
			c.Endpoints = append(c.Endpoints, proxy.Endpoint{Address: e.address, Mesh: e.mesh, Labels: e.labels})
		}
		b.applyPolicy(&c, svc, pol)
	}
	cc := &cachedCluster{cluster: c, warnings: b.warn}
	cc.json, _ = json.Marshal(&cc.cluster)
	v, _ := x.clusterCache.LoadOrStore(name, cc)
	return v.(*cachedCluster)
}

// missingCluster is an empty cluster for a destination that does not
// exist: requests routed to it answer 503 (no healthy upstream).
func (b *builder) missingCluster(port uint32, subset, host string, tcp bool) string {
	name := ClusterName(proxy.Outbound, port, subset, host)
	if _, ok := b.clusters[name]; !ok {
		b.clusters[name] = &proxy.Cluster{Name: name, TCP: tcp, Metadata: map[string]string{"destination_service": host}}
	}
	return name
}

func (b *builder) inbound() {
	pod := b.pod
	type inPort struct {
		port       uint32
		http, grpc bool
	}
	ports := map[uint32]*inPort{}
	named := map[string]uint32{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP || p.ContainerPort <= 0 {
				continue
			}
			ports[uint32(p.ContainerPort)] = &inPort{port: uint32(p.ContainerPort)}
			if p.Name != "" {
				named[p.Name] = uint32(p.ContainerPort)
			}
		}
	}
	// Service ports that select the pod say the protocol (the first
	// service by host wins) and add target ports not declared.
	seen := map[uint32]bool{}
	for _, svc := range b.x.services {
		if svc.name == "" || svc.namespace != pod.Namespace || len(svc.selector) == 0 || !labelsMatch(svc.selector, pod.Labels) {
			continue
		}
		for _, sp := range svc.ports {
			n, err := strconv.Atoi(sp.targetPort)
			port := uint32(n)
			if err != nil {
				port = named[sp.targetPort]
			}
			if port == 0 || port > 65535 {
				continue
			}
			ip := ports[port]
			if ip == nil {
				ip = &inPort{port: port}
				ports[port] = ip
			}
			if !seen[port] {
				seen[port] = true
				ip.http, ip.grpc = sp.http, sp.grpc
			}
		}
	}
	excluded := portList(pod.Annotations[meshconfig.ExcludeInboundPorts])
	include, hasInclude := pod.Annotations[meshconfig.IncludeInboundPorts]
	included := portList(include)
	modes := fromistio.PeerAuthentication(pod.Namespace, pod.Labels, b.x.opts.RootNamespace, b.x.snap.PeerAuthentications)
	for _, port := range slices.Sorted(maps.Keys(ports)) {
		ip := ports[port]
		if excluded[port] || (hasInclude && include != "*" && !included[port]) || proxyPort(port) {
			continue
		}
		name := ClusterName(proxy.Inbound, port, "", "")
		c := &proxy.Cluster{
			Name: name, TCP: !ip.http,
			Endpoints: []proxy.Endpoint{{Address: "127.0.0.1:" + strconv.Itoa(int(port))}},
		}
		if ip.grpc {
			c.Protocol = proxy.ProtocolH2C
		}
		b.clusters[name] = c
		chain := proxy.FilterChain{Name: "inbound|" + strconv.Itoa(int(port)), Match: proxy.ChainMatch{Port: port}, MTLS: modes.For(port)}
		if ip.http {
			t := &proxy.RouteTable{Name: chain.Name, VirtualHosts: []proxy.VirtualHost{{
				Name: "inbound|http|" + strconv.Itoa(int(port)), Domains: []string{"*"},
				Routes: []proxy.Route{{
					Name:     "default",
					Clusters: []proxy.WeightedCluster{{Cluster: name}},
					// Inbound requests are not retried: the client's
					// sidecar does.
					Retry: &proxy.RetryPolicy{},
				}},
			}}}
			b.tables[t.Name] = t
			chain.RouteTable = t.Name
		} else {
			chain.TCPCluster = name
		}
		b.inChains = append(b.inChains, chain)
	}
	// Every other port: to the original destination, under the
	// workload's default mTLS mode.
	b.inChains = append(b.inChains, proxy.FilterChain{Name: "inbound|passthrough", MTLS: modes.Default})
}

// proxyPort says whether port is one of the sidecar's own.
func proxyPort(port uint32) bool {
	switch port {
	case meshconfig.OutboundPort, meshconfig.InboundPort, meshconfig.AdminPort, meshconfig.StatsPort, meshconfig.HealthPort, 15090:
		return true
	}
	return false
}

// portList parses a comma-separated port list ("80,8080").
func portList(s string) map[uint32]bool {
	out := map[uint32]bool{}
	for f := range strings.SplitSeq(s, ",") {
		if n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16); err == nil && n > 0 {
			out[uint32(n)] = true
		}
	}
	return out
}

// sidecarScope applies the Sidecar resource that selects the pod: the
// most specific one in its namespace (a workload selector that matches),
// else its namespace's without selector, else the root namespace's.
func (b *builder) sidecarScope() {
	b.outPolicy = b.x.opts.Outbound
	var chosen, nsWide, root = -1, -1, -1
	scs := sortedBy(b.x.snap.Sidecars)
	for i, sc := range scs {
		switch {
		case sc.Namespace == b.pod.Namespace && sc.Spec.WorkloadSelector != nil:
			if chosen < 0 && labelsMatch(sc.Spec.WorkloadSelector.Labels, b.pod.Labels) {
				chosen = i
			}
		case sc.Namespace == b.pod.Namespace:
			if nsWide < 0 {
				nsWide = i
			}
		case sc.Namespace == b.x.opts.RootNamespace && sc.Spec.WorkloadSelector == nil:
			if root < 0 {
				root = i
			}
		}
	}
	idx := cmp.Or(chosen+1, nsWide+1, root+1) - 1
	if idx < 0 {
		return
	}
	sc := scs[idx]
	if p := sc.Spec.OutboundTrafficPolicy; p != nil {
		if p.Mode.String() == string(RegistryOnly) {
			b.outPolicy = RegistryOnly
		} else {
			b.outPolicy = AllowAny
		}
	}
	if len(sc.Spec.Egress) == 0 {
		return
	}
	b.egress = []string{}
	for _, e := range sc.Spec.Egress {
		if e == nil {
			continue
		}
		if e.Port != nil || e.Bind != "" {
			b.warnf("Sidecar %s/%s: egress port and bind are not supported; only hosts are used", sc.Namespace, sc.Name)
		}
		b.egress = append(b.egress, e.Hosts...)
	}
}

// visible says whether the Sidecar resource's egress hosts let the proxy
// see svc ("ns/host": ns "*", "." (the proxy's), "~" (none) or a name;
// host "*", "*.suffix" or a name).
func (b *builder) visible(svc *service) bool {
	if b.egress == nil {
		return true
	}
	for _, e := range b.egress {
		ns, host, ok := strings.Cut(e, "/")
		if !ok {
			continue
		}
		switch ns {
		case "~":
			continue
		case ".":
			ns = b.pod.Namespace
		}
		if ns != "*" && ns != svc.namespace {
			continue
		}
		if hostMatches(strings.ToLower(host), svc.host) {
			return true
		}
	}
	return false
}

// hostMatches says whether pattern ("*", "*.suffix" or a name) matches
// host; a wildcard host matches a pattern that covers it.
func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "*" || pattern == host:
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:]) ||
			(strings.HasPrefix(host, "*.") && strings.HasSuffix(host[1:], pattern[1:]))
	}
	return false
}
