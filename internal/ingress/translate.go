package ingress

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// Objects are the cluster objects a translation reads besides the
// Ingresses (listers in the controller, maps in tests).
type Objects interface {
	Service(namespace, name string) (*corev1.Service, error)
	// EndpointSlices are the slices of the named Service.
	EndpointSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error)
	Secret(namespace, name string) (*corev1.Secret, error)
}

// TranslateOptions are the parts of the proxy configuration that do not
// come from the cluster.
type TranslateOptions struct {
	HTTPAddr, HTTPSAddr string
	// DefaultCertificate answers TLS clients whose name has no
	// certificate of its own.
	DefaultCertificate proxy.Certificate
}

// Problem is something wrong with an Ingress that the user should hear
// about (as a Warning event on it).
type Problem struct {
	Namespace string `json:"namespace"`
	Ingress   string `json:"ingress"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

// Event reasons.
const (
	ReasonServiceNotFound     = "ServiceNotFound"
	ReasonServicePortNotFound = "ServicePortNotFound"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonInvalidSecret       = "InvalidSecret"
	ReasonUnsupportedBackend  = "UnsupportedBackend"
	ReasonConflict            = "Conflict"
	ReasonInvalidPath         = "InvalidPath"
	ReasonInvalidAnnotation   = "InvalidAnnotation"
)

// Names in the generated configuration.
const (
	ListenerHTTP       = "http"
	ListenerHTTPS      = "https"
	routeTableName     = "ingress"
	defaultCertName    = "default"
	catchAllHost       = "*"
	appProtocolH2C     = "kubernetes.io/h2c"
	appProtocolH2CBare = "h2c"
)

// Result is a translation.
type Result struct {
	Config   *proxy.Config
	Problems []Problem
	// Services and Secrets the translation read ("namespace/name"), so
	// that the controller knows which changes matter.
	Services map[string]bool
	Secrets  map[string]bool
}

// Translate turns the Ingresses this controller serves into a proxy
// configuration, the way ingress-nginx merges them: hosts and paths from
// all Ingresses in one table, the oldest Ingress winning a host/path (and
// a host's certificate) that several define. It is a pure function of its
// inputs.
func Translate(ingresses []*networkingv1.Ingress, objs Objects, opts TranslateOptions) Result {
	t := &translator{objs: objs, res: Result{Services: map[string]bool{}, Secrets: map[string]bool{}},
		clusters: map[string]int{}, hosts: map[string]*hostRoutes{}, problemSeen: map[Problem]bool{},
		settings: map[types.NamespacedName]ingressSettings{}}
	ings := slices.Clone(ingresses)
	sort.SliceStable(ings, func(i, j int) bool {
		a, b := ings[i], ings[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	for _, ing := range ings {
		t.rules(ing)
	}
	t.defaults(ings)
	cfg := &proxy.Config{
		Clusters:    t.clusterList,
		RouteTables: []proxy.RouteTable{{Name: routeTableName, SingleLabelWildcards: true, VirtualHosts: t.virtualHosts()}},
	}
	cfg.Certificates, cfg.Listeners = t.tls(ings, opts)
	t.res.Config = cfg
	return t.res
}

type translator struct {
	objs        Objects
	res         Result
	clusterList []proxy.Cluster
	clusters    map[string]int // name → index in clusterList
	hosts       map[string]*hostRoutes
	problemSeen map[Problem]bool
	settings    map[types.NamespacedName]ingressSettings
}

// hostRoutes collects one host's routes.
type hostRoutes struct {
	routes []pathRoute
	seen   map[string]types.NamespacedName // "kind path" → the Ingress that has it
	// owner is the oldest Ingress with rules for the host; its
	// defaultBackend answers the host's unmatched paths.
	owner *networkingv1.Ingress
}

type pathRoute struct {
	exact bool
	key   int // length of the path compared (trailing slash dropped for prefixes)
	route proxy.Route
}

func (t *translator) problem(ing *networkingv1.Ingress, reason, format string, args ...any) {
	p := Problem{Namespace: ing.Namespace, Ingress: ing.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	if !t.problemSeen[p] {
		t.problemSeen[p] = true
		t.res.Problems = append(t.res.Problems, p)
	}
}

func key(ing *networkingv1.Ingress) types.NamespacedName {
	return types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
}

func (t *translator) rules(ing *networkingv1.Ingress) {
	for _, rule := range ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if host == "" {
			host = catchAllHost
		}
		hr := t.hosts[host]
		if hr == nil {
			hr = &hostRoutes{seen: map[string]types.NamespacedName{}, owner: ing}
			t.hosts[host] = hr
		}
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			path := p.Path
			if path == "" {
				path = "/"
			}
			exact := p.PathType != nil && *p.PathType == networkingv1.PathTypeExact
			kind, seenKey := proxy.PathSegmentPrefix, "prefix "+strings.TrimSuffix(path, "/")
			if exact {
				kind, seenKey = proxy.PathExact, "exact "+path
			}
			if !strings.HasPrefix(path, "/") {
				t.problem(ing, ReasonInvalidPath, "path %q on host %q does not start with /; ignored", path, rule.Host)
				continue
			}
			if other, dup := hr.seen[seenKey]; dup {
				if other != key(ing) {
					t.problem(ing, ReasonConflict, "host %q path %q is already defined by Ingress %s, which is older; this rule is ignored", host, path, other)
				}
				continue
			}
			hr.seen[seenKey] = key(ing)
			r := t.backendRoute(ing, &p.Backend, fmt.Sprintf("path %s", path))
			r.Match = proxy.RouteMatch{Path: proxy.PathMatch{Kind: kind, Value: path}}
			n := len(path)
			if !exact {
				n = len(strings.TrimSuffix(path, "/"))
			}
			hr.routes = append(hr.routes, pathRoute{exact: exact, key: n, route: r})
		}
	}
}

// defaults adds each host's fallback route for paths no rule matches:
// for a named host the defaultBackend of its owner (the oldest Ingress
// with rules for it); for the catch-all host, and for hosts no rule
// names, the defaultBackend of the oldest Ingress that has no rules.
// Without one, such requests get 404.
func (t *translator) defaults(ings []*networkingv1.Ingress) {
	var global *proxy.Route
	var globalOwner *networkingv1.Ingress
	for _, ing := range ings {
		if ing.Spec.DefaultBackend == nil || len(ing.Spec.Rules) != 0 {
			continue
		}
		if global != nil {
			t.problem(ing, ReasonConflict, "the default backend is already set by Ingress %s/%s, which is older; this defaultBackend is ignored",
				globalOwner.Namespace, globalOwner.Name)
			continue
		}
		r := t.backendRoute(ing, ing.Spec.DefaultBackend, "defaultBackend")
		global, globalOwner = &r, ing
	}
	for host, hr := range t.hosts {
		fallback := global
		if host != catchAllHost {
			fallback = nil
			if db := hr.owner.Spec.DefaultBackend; db != nil {
				r := t.backendRoute(hr.owner, db, "defaultBackend")
				fallback = &r
			}
		}
		if _, hasRoot := hr.seen[rootPrefix]; fallback != nil && !hasRoot {
			hr.routes = append(hr.routes, pathRoute{key: -1, route: *fallback})
		}
	}
	if global != nil && t.hosts[catchAllHost] == nil {
		t.hosts[catchAllHost] = &hostRoutes{routes: []pathRoute{{key: -1, route: *global}}}
	}
}

// rootPrefix is the seen-key of a Prefix "/" rule.
const rootPrefix = "prefix "

// virtualHosts orders each host's routes as Ingress requires: the longest
// matching path wins, Exact before Prefix at equal length; then the
// fallback.
func (t *translator) virtualHosts() []proxy.VirtualHost {
	names := make([]string, 0, len(t.hosts))
	for h := range t.hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	var out []proxy.VirtualHost
	for _, h := range names {
		hr := t.hosts[h]
		sort.SliceStable(hr.routes, func(i, j int) bool {
			a, b := hr.routes[i], hr.routes[j]
			if a.key != b.key {
				return a.key > b.key
			}
			return a.exact && !b.exact
		})
		vh := proxy.VirtualHost{Name: h, Domains: []string{h}}
		for _, r := range hr.routes {
			vh.Routes = append(vh.Routes, r.route)
		}
		out = append(out, vh)
	}
	return out
}

// backendRoute is a route (without match) to an Ingress backend; what
// is missing becomes a Problem and an empty cluster, so that the path
// answers 503 and the rest keeps working.
func (t *translator) backendRoute(ing *networkingv1.Ingress, b *networkingv1.IngressBackend, where string) proxy.Route {
	r := proxy.Route{Name: ing.Namespace + "/" + ing.Name}
	if b.Service == nil {
		t.problem(ing, ReasonUnsupportedBackend, "%s: only service backends are supported; it answers 503", where)
		r.DirectResponse = &proxy.DirectResponse{Status: 503, Body: "ingress backend not supported\n"}
		return r
	}
	r.Clusters = []proxy.WeightedCluster{{Cluster: t.cluster(ing, b.Service, where)}}
	r.Timeout = t.annotations(ing).timeout
	return r
}

// Annotations an Ingress may carry.
const (
	// AnnotationLoadBalance picks the endpoint choice for the Services
	// the Ingress names: round-robin (default), least-request or random.
	// A Service port that several Ingresses name follows the oldest.
	AnnotationLoadBalance = "skiff.dev/load-balance"
	// AnnotationTimeout bounds each request of the Ingress's paths,
	// upstream answer included (a Go duration: "30s"); default none.
	AnnotationTimeout = "skiff.dev/timeout"
)

type ingressSettings struct {
	lb      proxy.LBPolicy
	timeout time.Duration
}

// annotations parses ing's annotations once, reporting bad values.
func (t *translator) annotations(ing *networkingv1.Ingress) ingressSettings {
	k := key(ing)
	if s, ok := t.settings[k]; ok {
		return s
	}
	var s ingressSettings
	if v, ok := ing.Annotations[AnnotationLoadBalance]; ok {
		switch lb := proxy.LBPolicy(v); lb {
		case proxy.LBRoundRobin, proxy.LBLeastRequest, proxy.LBRandom:
			s.lb = lb
		default:
			t.problem(ing, ReasonInvalidAnnotation, "%s: %q is not round-robin, least-request or random; round-robin is used", AnnotationLoadBalance, v)
		}
	}
	if v, ok := ing.Annotations[AnnotationTimeout]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.problem(ing, ReasonInvalidAnnotation, "%s: %q is not a positive duration such as \"30s\"; no timeout is used", AnnotationTimeout, v)
		} else {
			s.timeout = d
		}
	}
	t.settings[k] = s
	return s
}

// cluster returns the name of the cluster for a service backend, adding
// it on first use.
func (t *translator) cluster(ing *networkingv1.Ingress, b *networkingv1.IngressServiceBackend, where string) string {
	ns := ing.Namespace
	port := b.Port.Name
	if port == "" {
		port = strconv.Itoa(int(b.Port.Number))
	}
	name := ns + "/" + b.Name + ":" + port
	svcKey := ns + "/" + b.Name
	t.res.Services[svcKey] = true
	svc, err := t.objs.Service(ns, b.Name)
	var sp *corev1.ServicePort
	switch {
	case apierrors.IsNotFound(err) || (err == nil && svc == nil):
		t.problem(ing, ReasonServiceNotFound, "%s: service %q not found; it answers 503", where, svcKey)
	case err != nil:
		t.problem(ing, ReasonServiceNotFound, "%s: service %q: %v; it answers 503", where, svcKey, err)
	default:
		if sp = servicePort(svc, b.Port); sp == nil {
			t.problem(ing, ReasonServicePortNotFound, "%s: service %q has no port %s; it answers 503", where, svcKey, port)
		}
	}
	if _, ok := t.clusters[name]; ok {
		return name
	}
	cl := proxy.Cluster{Name: name, LB: t.annotations(ing).lb}
	if sp != nil {
		if ap := sp.AppProtocol; ap != nil && (*ap == appProtocolH2C || *ap == appProtocolH2CBare) {
			cl.Protocol = proxy.ProtocolH2C
		}
		cl.Endpoints = t.endpoints(svc, sp)
	}
	t.clusters[name] = len(t.clusterList)
	t.clusterList = append(t.clusterList, cl)
	return name
}

func servicePort(svc *corev1.Service, p networkingv1.ServiceBackendPort) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (p.Name != "" && sp.Name == p.Name) || (p.Name == "" && sp.Port == p.Number) {
			return sp
		}
	}
	return nil
}

// endpoints are the ready addresses of the Service's port, sorted.
func (t *translator) endpoints(svc *corev1.Service, sp *corev1.ServicePort) []proxy.Endpoint {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if svc.Spec.ExternalName == "" {
			return nil
		}
		return []proxy.Endpoint{{Address: net.JoinHostPort(strings.TrimSuffix(svc.Spec.ExternalName, "."), strconv.Itoa(int(sp.Port)))}}
	}
	slices_, err := t.objs.EndpointSlices(svc.Namespace, svc.Name)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []proxy.Endpoint
	for _, s := range slices_ {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		var port int32 = -1
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == corev1.ProtocolTCP && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port <= 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				addr := net.JoinHostPort(a, strconv.Itoa(int(port)))
				if !seen[addr] {
					seen[addr] = true
					out = append(out, proxy.Endpoint{Address: addr})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// tls picks each host's certificate (the oldest Ingress's claim wins)
// and builds the listeners.
func (t *translator) tls(ings []*networkingv1.Ingress, opts TranslateOptions) ([]proxy.Certificate, []proxy.Listener) {
	def := opts.DefaultCertificate
	def.Name, def.Hosts = defaultCertName, nil
	certs := []proxy.Certificate{def}
	claimed := map[string]string{} // host → certificate name
	byName := map[string]int{}     // certificate name → index in certs
	for _, ing := range ings {
		var ruleHosts, listed []string
		for _, r := range ing.Spec.Rules {
			if r.Host != "" {
				ruleHosts = append(ruleHosts, strings.ToLower(r.Host))
			}
		}
		var found []secretCert
		for _, entry := range ing.Spec.TLS {
			hosts := entry.Hosts
			if len(hosts) == 0 {
				hosts = ruleHosts
			}
			listed = append(listed, hosts...)
			if entry.SecretName == "" {
				continue // the default certificate
			}
			t.res.Secrets[ing.Namespace+"/"+entry.SecretName] = true
			cert, ok := t.secret(ing, entry.SecretName, hosts)
			if !ok {
				continue
			}
			found = append(found, cert)
			for _, h := range hosts {
				t.claim(claimed, byName, &certs, strings.ToLower(h), cert.spec)
			}
		}
		// A rule host that no TLS entry lists takes a certificate of the
		// Ingress that covers it (as ingress-nginx does).
		for _, h := range ruleHosts {
			if slices.Contains(listed, h) {
				continue
			}
			for _, c := range found {
				if covers(c.parsed, h) {
					t.claim(claimed, byName, &certs, h, c.spec)
					break
				}
			}
		}
	}
	names := make([]string, 0, len(certs))
	for _, c := range certs {
		names = append(names, c.Name)
	}
	for i := range certs[1:] {
		sort.Strings(certs[1+i].Hosts)
	}
	listeners := []proxy.Listener{
		{Name: ListenerHTTP, Address: opts.HTTPAddr, RouteTable: routeTableName},
		{Name: ListenerHTTPS, Address: opts.HTTPSAddr, RouteTable: routeTableName,
			TLS: &proxy.ListenerTLS{Certificates: names, DefaultCertificate: defaultCertName}},
	}
	return certs, listeners
}

// claim gives host to the certificate spec unless an older claim has it.
func (t *translator) claim(claimed map[string]string, byName map[string]int, certs *[]proxy.Certificate, host string, spec proxy.Certificate) {
	if host == "" {
		return
	}
	if _, taken := claimed[host]; taken {
		return
	}
	claimed[host] = spec.Name
	i, ok := byName[spec.Name]
	if !ok {
		i = len(*certs)
		byName[spec.Name] = i
		*certs = append(*certs, spec)
	}
	(*certs)[i].Hosts = append((*certs)[i].Hosts, host)
}

// covers reports whether the certificate is valid for host (a wildcard
// host needs the same wildcard name).
func covers(c *tls.Certificate, host string) bool {
	if c.Leaf == nil {
		return false
	}
	if strings.HasPrefix(host, "*.") {
		return slices.Contains(c.Leaf.DNSNames, host)
	}
	return c.Leaf.VerifyHostname(host) == nil
}

type secretCert struct {
	spec   proxy.Certificate
	parsed *tls.Certificate
}

// secret reads a TLS Secret of ing's namespace and checks its pair.
func (t *translator) secret(ing *networkingv1.Ingress, name string, hosts []string) (secretCert, bool) {
	s, err := t.objs.Secret(ing.Namespace, name)
	if err != nil || s == nil {
		if err == nil || apierrors.IsNotFound(err) {
			t.problem(ing, ReasonSecretNotFound, "TLS secret %q not found; hosts %v use the default certificate", ing.Namespace+"/"+name, hosts)
		} else {
			t.problem(ing, ReasonSecretNotFound, "TLS secret %q: %v; hosts %v use the default certificate", ing.Namespace+"/"+name, err, hosts)
		}
		return secretCert{}, false
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.problem(ing, ReasonInvalidSecret, "TLS secret %q: %v; hosts %v use the default certificate", ing.Namespace+"/"+name, err, hosts)
		return secretCert{}, false
	}
	return secretCert{spec: proxy.Certificate{Name: ing.Namespace + "/" + name, CertPEM: crt, KeyPEM: key}, parsed: &pair}, true
}
