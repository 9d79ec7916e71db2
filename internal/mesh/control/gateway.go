package control

import (
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// This file translates Istio Gateways, and the VirtualServices bound to
// them, into a fragment of an edge proxy's configuration (the node's
// ingress proxy, which internal/ingress runs). It shares the
// VirtualService → routes code and the cluster building with the sidecar
// translation.
//
// How it reads Istio's objects:
//
//   - The edge proxy is a workload with GatewayOptions.Labels (default
//     istio=ingressgateway) in GatewayOptions.Namespace (default
//     istio-system). A Gateway applies when its selector is a subset of
//     those labels (an empty selector selects every gateway), from any
//     namespace.
//   - One listener per server port (Istio's "0.0.0.0_PORT"), bound to
//     GatewayOptions.Addresses[port] or "0.0.0.0:PORT". Servers of several
//     Gateways on one port share it; their protocols must agree (plain
//     HTTP, or TLS-terminated HTTPS), the oldest Gateway's server decides
//     and a conflicting one is skipped with a warning.
//   - Protocols HTTP, HTTP2, GRPC, GRPC-WEB are plain HTTP (HTTP/2 with
//     prior knowledge accepted); HTTPS with tls.mode SIMPLE terminates TLS
//     with the certificate of the Secret tls.credentialName (keys tls.crt
//     and tls.key, or cert and key) in the edge proxy's namespace (as
//     Istio reads it from the gateway workload's), chosen by SNI among
//     the servers' hosts. TCP, TLS and MONGO servers, and TLS
//     modes PASSTHROUGH, AUTO_PASSTHROUGH, MUTUAL, OPTIONAL_MUTUAL and
//     ISTIO_MUTUAL, are not supported (warning; server skipped), nor are
//     certificate files, bind and defaultEndpoint.
//   - A VirtualService applies when its gateways name the Gateway
//     ("ns/name", or "name" for one in the VirtualService's namespace).
//     Its hosts that a server's host admits ("ns/host": ns "*", "." for
//     the Gateway's or a name, compared with the VirtualService's
//     namespace; host exact or "*.suffix"; no "ns/" means "*/") become
//     virtual hosts, each named as the narrower of the two ("*" bound to a
//     server for "a.example.com" answers for "a.example.com" only).
//     Several VirtualServices for one host are merged, their routes
//     appended oldest first (as Istio merges them on gateways). A match
//     holds when its gateways (if any) name the Gateway, its port (if
//     any) is the server's, and its sourceLabels and sourceNamespace
//     describe the edge proxy's workload.
//   - Merged routes are ordered as Istio orders them: catch-all routes
//     (path prefix "/", regex ".*" or none, no other condition) after
//     the others. A host without a VirtualService answers 404 (a port
//     without any gets Istio's blackhole virtual host). tls.httpsRedirect
//     on an HTTP server answers every request of its hosts with a 301 to
//     https.
//   - Clusters are the sidecars' ("outbound|PORT|SUBSET|HOST", with
//     DestinationRule policy). Auto mTLS needs the proxy's mesh identity:
//     without GatewayOptions.Identity the edge proxy speaks plaintext to
//     mesh endpoints (a STRICT destination will refuse it) and clusters
//     whose DestinationRule asks for ISTIO_MUTUAL lose their TLS, with a
//     warning.

// DefaultGatewayLabels are the edge proxy's workload labels when
// GatewayOptions.Labels is empty (Istio's ingress gateway's).
var DefaultGatewayLabels = map[string]string{"istio": "ingressgateway"}

// GatewayOptions describe the edge proxy a Gateway translation is for.
type GatewayOptions struct {
	// Labels are the edge proxy's workload labels, which Gateway
	// selectors and sourceLabels matches are compared with (default
	// DefaultGatewayLabels).
	Labels map[string]string
	// Namespace is the edge proxy's workload namespace (sourceNamespace
	// matches; default the mesh's root namespace).
	Namespace string
	// Addresses are the listen addresses by server port; a port not
	// listed listens on "0.0.0.0:PORT".
	Addresses map[uint32]string
	// Identity is the edge proxy's mesh certificate (nil: none, so no
	// mTLS to mesh endpoints).
	Identity *proxy.Identity
}

// GatewayInput is what a Gateway translation reads besides the
// Snapshot.
type GatewayInput struct {
	Gateways []*networkingv1.Gateway
	// Secrets hold the servers' TLS credentials (credentialName); only
	// those named by a Gateway are read.
	Secrets []*corev1.Secret
}

// Names in a gateway fragment.
const (
	// GatewayListenerPrefix starts the name of a gateway listener (then
	// "_PORT", as Istio's "0.0.0.0_80").
	GatewayListenerPrefix = "gateway"
	// GatewayCertificatePrefix starts a certificate's name (then
	// "/NAMESPACE/SECRET").
	GatewayCertificatePrefix = "gateway"
)

// GatewayListenerName is the listener of a server port.
func GatewayListenerName(port uint32) string {
	return GatewayListenerPrefix + "_" + strconv.Itoa(int(port))
}

// TranslateGateway computes the edge proxy's fragment for the Gateways
// that select it; see Index.Gateway.
func TranslateGateway(snap *Snapshot, in GatewayInput, opts MeshOptions, gopts GatewayOptions) (*proxy.Config, []string) {
	return NewIndex(snap, opts).Gateway(in, gopts)
}

// gatewayPort is one listener in the making: the servers on a port.
type gatewayPort struct {
	port    uint32
	tls     bool // HTTPS (terminated)
	owner   string
	servers []gatewayServer
	certs   []string
}

type gatewayServer struct {
	gw     *networkingv1.Gateway
	server *networkingapi.Server
	// hosts are the server's hosts as (namespace, host) pairs.
	hosts [][2]string
	// redirect: tls.httpsRedirect on a plain HTTP server.
	redirect bool
}

// Gateway computes the listeners, route tables, clusters and
// certificates that serve the Gateways in `in` selecting the edge proxy
// described by gopts, and the Identity (gopts.Identity). The result has
// no Version; warnings say what could not be used and why.
func (x *Index) Gateway(in GatewayInput, gopts GatewayOptions) (cfg *proxy.Config, warnings []string) {
	defer func() {
		if r := recover(); r != nil {
			cfg, warnings = nil, []string{fmt.Sprintf("gateway translation failed: %v", r)}
		}
	}()
	if len(gopts.Labels) == 0 {
		gopts.Labels = DefaultGatewayLabels
	}
	if gopts.Namespace == "" {
		gopts.Namespace = x.opts.RootNamespace
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: gopts.Namespace, Labels: gopts.Labels}}
	b := &builder{x: x, pod: pod, clusters: map[string]*proxy.Cluster{}, tables: map[string]*proxy.RouteTable{},
		encoded: map[string][]byte{}}
	b.warn = append(b.warn, x.errs...)
	cfg = &proxy.Config{Identity: gopts.Identity}

	secrets := map[string]*corev1.Secret{}
	for _, s := range in.Secrets {
		if s != nil {
			secrets[s.Namespace+"/"+s.Name] = s
		}
	}
	ports := map[uint32]*gatewayPort{}
	for _, gw := range sortedBy(in.Gateways) {
		if !labelsMatch(gw.Spec.Selector, gopts.Labels) {
			continue
		}
		for i, srv := range gw.Spec.Servers {
			b.addServer(ports, gw, i, srv, secrets, cfg)
		}
	}
	for _, port := range slices.Sorted(maps.Keys(ports)) {
		gp := ports[port]
		l := proxy.Listener{Name: GatewayListenerName(port), Address: gopts.Addresses[port]}
		if l.Address == "" {
			l.Address = "0.0.0.0:" + strconv.Itoa(int(port))
		}
		t := &proxy.RouteTable{Name: "http." + strconv.Itoa(int(port))}
		if gp.tls {
			t.Name = "https." + strconv.Itoa(int(port))
			l.TLS = &proxy.ListenerTLS{Certificates: gp.certs}
		} else {
			l.H2C = true
		}
		t.VirtualHosts = b.gatewayHosts(gp)
		b.tables[t.Name] = t
		l.RouteTable = t.Name
		cfg.Listeners = append(cfg.Listeners, l)
	}
	for _, name := range slices.Sorted(maps.Keys(b.tables)) {
		cfg.RouteTables = append(cfg.RouteTables, *b.tables[name])
	}
	for _, name := range slices.Sorted(maps.Keys(b.clusters)) {
		c := *b.clusters[name]
		if c.TLS != nil && c.TLS.Mode == proxy.TLSIstioMutual && gopts.Identity == nil {
			if !c.TLS.Auto {
				b.warnf("%s: ISTIO_MUTUAL needs the gateway's mesh identity, which it has none of; plaintext used", name)
			}
			c.TLS = nil
		}
		cfg.Clusters = append(cfg.Clusters, c)
	}
	return cfg, uniq(b.warn)
}

// uniq drops repeated messages, keeping the first of each.
func uniq(msgs []string) []string {
	seen := map[string]bool{}
	out := msgs[:0:0]
	for _, m := range msgs {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// addServer adds one server of gw to its port.
func (b *builder) addServer(ports map[uint32]*gatewayPort, gw *networkingv1.Gateway, i int, srv *networkingapi.Server,
	secrets map[string]*corev1.Secret, cfg *proxy.Config) {
	where := fmt.Sprintf("Gateway %s/%s: servers[%d]", gw.Namespace, gw.Name, i)
	if srv == nil || srv.Port == nil || srv.Port.Number == 0 || srv.Port.Number > 65535 {
		b.warnf("%s: no port; skipped", where)
		return
	}
	if srv.Bind != "" || srv.DefaultEndpoint != "" {
		b.warnf("%s: bind and defaultEndpoint are not supported; ignored", where)
	}
	port := srv.Port.Number
	var isTLS bool
	switch p := strings.ToUpper(srv.Port.Protocol); p {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
	case "HTTPS":
		isTLS = true
	default:
		b.warnf("%s: protocol %q is not supported by the edge proxy (HTTP, HTTP2, GRPC, GRPC-WEB and HTTPS are); skipped", where, p)
		return
	}
	t := srv.Tls
	var certName string
	if isTLS {
		mode := networkingapi.ServerTLSSettings_SIMPLE
		if t != nil {
			mode = t.Mode
		}
		if mode != networkingapi.ServerTLSSettings_SIMPLE {
			b.warnf("%s: tls mode %s is not supported (SIMPLE is); skipped", where, mode)
			return
		}
		name, err := b.serverCertificate(gw, t, srv, secrets, cfg)
		if err != nil {
			b.warnf("%s: %v; skipped", where, err)
			return
		}
		certName = name
	}
	gp := ports[port]
	if gp == nil {
		gp = &gatewayPort{port: port, tls: isTLS, owner: gw.Namespace + "/" + gw.Name}
		ports[port] = gp
	} else if gp.tls != isTLS {
		b.warnf("%s: port %d is already %s port of Gateway %s; skipped", where, port, map[bool]string{true: "an HTTPS", false: "a plain HTTP"}[gp.tls], gp.owner)
		return
	}
	if certName != "" && !slices.Contains(gp.certs, certName) {
		gp.certs = append(gp.certs, certName)
	}
	gs := gatewayServer{gw: gw, server: srv, redirect: !isTLS && t != nil && t.HttpsRedirect}
	for _, h := range srv.Hosts {
		ns, host, ok := strings.Cut(h, "/")
		if !ok {
			ns, host = "*", h
		}
		if ns == "." {
			ns = gw.Namespace
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if !validGatewayHost(host) || ns == "" {
			b.warnf("%s: bad host %q; ignored", where, h)
			continue
		}
		gs.hosts = append(gs.hosts, [2]string{ns, host})
	}
	if len(gs.hosts) == 0 {
		b.warnf("%s: no hosts; skipped", where)
		return
	}
	gp.servers = append(gp.servers, gs)
}

// serverCertificate adds the server's certificate (from its
// credentialName Secret) to cfg and returns its name.
func (b *builder) serverCertificate(gw *networkingv1.Gateway, t *networkingapi.ServerTLSSettings, srv *networkingapi.Server,
	secrets map[string]*corev1.Secret, cfg *proxy.Config) (string, error) {
	if t == nil || t.CredentialName == "" {
		return "", fmt.Errorf("tls.credentialName is required (certificate files are not supported)")
	}
	if len(t.CredentialNames) > 0 || len(t.TlsCertificates) > 0 {
		b.warnf("Gateway %s/%s: tls.credentialNames and tlsCertificates are not supported; credentialName used", gw.Namespace, gw.Name)
	}
	// As Istio's "kubernetes://NAME": the Secret lives beside the
	// gateway workload, not beside the Gateway.
	key := b.pod.Namespace + "/" + t.CredentialName
	s := secrets[key]
	if s == nil {
		return "", fmt.Errorf("Secret %s (tls.credentialName) not found", key)
	}
	crt, pk := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 {
		crt, pk = s.Data["cert"], s.Data["key"]
	}
	if _, err := tls.X509KeyPair(crt, pk); err != nil {
		return "", fmt.Errorf("Secret %s: no usable certificate and key (tls.crt/tls.key or cert/key): %v", key, err)
	}
	name := GatewayCertificatePrefix + "/" + key
	for i := range cfg.Certificates {
		if cfg.Certificates[i].Name == name {
			return name, nil
		}
	}
	c := proxy.Certificate{Name: name, CertPEM: crt, KeyPEM: pk}
	for _, h := range srv.Hosts {
		_, host, ok := strings.Cut(h, "/")
		if !ok {
			host = h
		}
		if host != "*" {
			c.Hosts = append(c.Hosts, strings.ToLower(host))
		}
	}
	cfg.Certificates = append(cfg.Certificates, c)
	return name, nil
}

// gatewayHosts are the virtual hosts of one port: for every
// VirtualService bound to a server on it, the hosts the server admits;
// the hosts of servers with tls.httpsRedirect redirect instead.
func (b *builder) gatewayHosts(gp *gatewayPort) []proxy.VirtualHost {
	type vhost struct {
		routes   []proxy.Route
		redirect bool
		seen     map[*networkingv1.VirtualService]bool
	}
	hosts := map[string]*vhost{}
	add := func(name string) *vhost {
		v := hosts[name]
		if v == nil {
			v = &vhost{seen: map[*networkingv1.VirtualService]bool{}}
			hosts[name] = v
		}
		return v
	}
	for _, gs := range gp.servers {
		if gs.redirect {
			for _, h := range gs.hosts {
				add(h[1]).redirect = true
			}
		}
	}
	for _, vs := range sortedBy(b.x.snap.VirtualServices) {
		for _, gs := range gp.servers {
			if !boundTo(vs, gs.gw) {
				continue
			}
			names := serverHosts(gs, vs)
			if len(names) == 0 {
				continue
			}
			if !b.validVS(vs) {
				break
			}
			var routes []proxy.Route
			if !gs.redirect {
				routes = b.gatewayRoutes(vs, gs, gp.port)
			}
			for _, n := range names {
				v := add(n)
				v.redirect = v.redirect || gs.redirect
				if v.seen[vs] {
					continue
				}
				v.seen[vs] = true
				v.routes = append(v.routes, routes...)
			}
		}
	}
	var out []proxy.VirtualHost
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		vh := proxy.VirtualHost{Name: name + ":" + strconv.Itoa(int(gp.port)), Domains: []string{name}, Routes: catchAllLast(hosts[name].routes)}
		if hosts[name].redirect {
			vh.Routes = []proxy.Route{{Name: "https-redirect", Redirect: &proxy.Redirect{Scheme: "https", Code: 301}}}
		}
		out = append(out, vh)
	}
	if len(out) == 0 {
		// Istio's blackhole virtual host: everything answers 404.
		out = append(out, proxy.VirtualHost{Name: "blackhole:" + strconv.Itoa(int(gp.port)), Domains: []string{"*"}})
	}
	return out
}

// catchAllLast moves the routes that match every request (path "/"
// prefix, ".*" or none, nothing else) behind the others, keeping their
// order, as Istio sorts a gateway's merged routes: a VirtualService's
// catch-all does not shadow a later one's specific routes.
func catchAllLast(routes []proxy.Route) []proxy.Route {
	var specific, all []proxy.Route
	for _, r := range routes {
		m := r.Match
		p := m.Path
		catchAll := len(m.Methods) == 0 && len(m.Headers) == 0 && len(m.QueryParams) == 0 &&
			(p.Kind == proxy.PathAny || (p.Kind == proxy.PathPrefix && p.Value == "/") || (p.Kind == proxy.PathRegex && p.Value == ".*"))
		if catchAll {
			all = append(all, r)
		} else {
			specific = append(specific, r)
		}
	}
	return append(specific, all...)
}

// boundTo says whether vs names gw among its gateways.
func boundTo(vs *networkingv1.VirtualService, gw *networkingv1.Gateway) bool {
	return slices.ContainsFunc(vs.Spec.Gateways, func(g string) bool { return gatewayRef(g, vs.Namespace, gw) })
}

// gatewayRef says whether the reference ref ("ns/name" or "name", in
// namespace ns) names gw.
func gatewayRef(ref, ns string, gw *networkingv1.Gateway) bool {
	gns, name, ok := strings.Cut(ref, "/")
	if !ok {
		gns, name = ns, ref
	}
	return gns == gw.Namespace && name == gw.Name
}

// serverHosts are the names under which a server exposes vs: for each
// VirtualService host a server host admits, the narrower of the two.
func serverHosts(gs gatewayServer, vs *networkingv1.VirtualService) []string {
	var out []string
	for _, h := range gs.hosts {
		if h[0] != "*" && h[0] != vs.Namespace {
			continue
		}
		for _, vh := range vs.Spec.Hosts {
			vh = strings.ToLower(strings.TrimSuffix(vh, "."))
			if !validGatewayHost(vh) {
				continue
			}
			var name string
			switch {
			case hostMatches(h[1], vh):
				name = vh
			case hostMatches(vh, h[1]):
				name = h[1]
			default:
				continue
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// gatewayRoutes are vs's HTTP routes as one gateway server sees them.
func (b *builder) gatewayRoutes(vs *networkingv1.VirtualService, gs gatewayServer, port uint32) []proxy.Route {
	out := b.routesOf(vs, port, func(m *networkingapi.HTTPMatchRequest) bool {
		return b.gatewayMatchApplies(m, vs.Namespace, gs.gw, port)
	})
	if len(vs.Spec.Tcp) > 0 || len(vs.Spec.Tls) > 0 {
		b.warnf("VirtualService %s/%s: tcp and tls routes are not served by the edge proxy; ignored", vs.Namespace, vs.Name)
	}
	return out
}

// gatewayMatchApplies says whether a match's proxy-side conditions hold
// on gw's server port: its gateways (when given) name gw, and its port,
// sourceLabels and sourceNamespace describe the edge proxy.
func (b *builder) gatewayMatchApplies(m *networkingapi.HTTPMatchRequest, vsNamespace string, gw *networkingv1.Gateway, port uint32) bool {
	if len(m.Gateways) > 0 && !slices.ContainsFunc(m.Gateways, func(g string) bool { return gatewayRef(g, vsNamespace, gw) }) {
		return false
	}
	return (m.Port == 0 || m.Port == port) &&
		labelsMatch(m.SourceLabels, b.pod.Labels) &&
		(m.SourceNamespace == "" || m.SourceNamespace == b.pod.Namespace)
}

// validGatewayHost says whether h is a name a virtual host can carry:
// "*", "*.suffix" or a name without wildcards, ports or slashes.
func validGatewayHost(h string) bool {
	if h == "*" {
		return true
	}
	h = strings.TrimPrefix(h, "*.")
	return h != "" && !strings.HasPrefix(h, ".") && !strings.ContainsAny(h, "*/ \t:")
}

// validVS checks what the proxy would reject in a VirtualService bound to
// a gateway (regular expressions); a bad one is reported and skipped.
func (b *builder) validVS(vs *networkingv1.VirtualService) bool {
	err := checkVS(&vs.Spec)
	if err == nil {
		return true
	}
	msg := fmt.Sprintf("VirtualService %s/%s: %v; skipped", vs.Namespace, vs.Name, err)
	if !slices.Contains(b.warn, msg) {
		b.warn = append(b.warn, msg)
	}
	return false
}
