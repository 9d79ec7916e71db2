package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

// snapshot is a compiled Config: what requests are served from. It is
// immutable once published, except for clusters' endpoint sets.
type snapshot struct {
	cfg       *Config
	listeners map[string]*listenerSpec
	clusters  map[string]*cluster
	meshID    *meshIdentity // Config.Identity, parsed
}

type listenerSpec struct {
	name, address string
	tls, h2c      bool
	trust         bool
	hosts         *hostTable
	certs         *certTable
	// capture is set on capture listeners (capture.go).
	capture *captureSpec
}

// restartKey is what needs a new socket or server when it changes.
func (l *listenerSpec) restartKey() string {
	return fmt.Sprintf("%s|%t|%t|%t", l.address, l.tls, l.h2c, l.capture != nil)
}

type vhost struct {
	name   string
	routes []*route
}

type actionKind int

const (
	actionForward actionKind = iota
	actionRedirect
	actionDirect
)

type route struct {
	name  string
	vhost string
	match routeMatcher
	kind  actionKind

	targets     []target
	totalWeight uint32

	redirect Redirect
	direct   directResponse

	rewrite     Rewrite
	rewriteRe   *regexp.Regexp
	timeout     time.Duration
	retry       retryPolicy
	reqHeaders  headerOps
	respHeaders headerOps

	// Istio's extras (fault.go, mirror.go, cors.go); nil when unset.
	fault   *faultPolicy
	mirrors *mirrorSet
	cors    *corsPolicy
}

type target struct {
	cluster     *cluster
	weight      uint32
	reqHeaders  headerOps
	respHeaders headerOps
}

type directResponse struct {
	status      int
	body        []byte
	contentType []string
	length      []string
}

type headerKV struct {
	name string
	vals []string // shared by every request: never written in place
}

type headerOps struct {
	set    []headerKV
	add    []headerKV
	remove []string
}

func (o *headerOps) empty() bool { return len(o.set) == 0 && len(o.add) == 0 && len(o.remove) == 0 }

func (o *headerOps) apply(h http.Header) {
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, kv := range o.set {
		h[kv.name] = kv.vals
	}
	for _, kv := range o.add {
		h[kv.name] = append(h[kv.name], kv.vals...)
	}
}

type retryMask uint32

const (
	retryConnect retryMask = 1 << iota
	retryRefused
	retryReset
	retry5xx
	retryGateway
	retry409
	retryCodes
)

type retryPolicy struct {
	attempts int
	perTry   time.Duration
	on       retryMask
	codes    []int
}

// onStatus reports whether an answer with this status is retried.
func (p *retryPolicy) onStatus(code int) bool {
	switch {
	case p.on&retry5xx != 0 && code >= 500 && code <= 599:
		return true
	case p.on&retryGateway != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case p.on&retry409 != 0 && code == 409:
		return true
	case p.on&retryCodes != 0:
		for _, c := range p.codes {
			if c == code {
				return true
			}
		}
	}
	return false
}

// onAnswers reports whether the policy may retry after a response, which
// needs the request body kept.
func (p *retryPolicy) onAnswers() bool {
	return p.attempts > 0 && p.on&(retry5xx|retryGateway|retry409|retryCodes) != 0
}

// compiler turns a Config into a snapshot, collecting every problem.
type compiler struct {
	prev     *snapshot
	certs    func(c *Certificate) (*tls.Certificate, error)
	errs     []error
	clusters map[string]*cluster
	pending  map[*cluster][]Endpoint // endpoints for clusters kept from prev
	tables   map[string]*hostTable
	identity bool          // the config has a (valid) Identity
	meshID   *meshIdentity // that Identity, parsed
}

func (c *compiler) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// compile validates cfg and builds its snapshot. Clusters whose settings
// did not change are carried over from prev (their pools and counters
// kept); their new endpoints are returned in pending, to be set when the
// snapshot is published.
func compile(cfg *Config, prev *snapshot, certs func(*Certificate) (*tls.Certificate, error)) (*snapshot, map[*cluster][]Endpoint, error) {
	if cfg == nil {
		return nil, nil, fmt.Errorf("nil config: %w", errdefs.ErrInvalid)
	}
	c := &compiler{prev: prev, certs: certs, clusters: map[string]*cluster{},
		pending: map[*cluster][]Endpoint{}, tables: map[string]*hostTable{}}
	meshID, err := parseIdentity(cfg.Identity)
	if err != nil {
		c.errorf("identity: %v", err)
	}
	c.identity, c.meshID = meshID != nil, meshID
	for i := range cfg.Clusters {
		c.cluster(i, &cfg.Clusters[i])
	}
	for i := range cfg.RouteTables {
		c.table(i, &cfg.RouteTables[i])
	}
	certByName := map[string]*Certificate{}
	for i := range cfg.Certificates {
		cert := &cfg.Certificates[i]
		if cert.Name == "" {
			c.errorf("certificates[%d].name: required", i)
			continue
		}
		if _, dup := certByName[cert.Name]; dup {
			c.errorf("certificates[%d].name: duplicate %q", i, cert.Name)
			continue
		}
		certByName[cert.Name] = cert
	}
	snap := &snapshot{cfg: cfg, listeners: map[string]*listenerSpec{}, clusters: c.clusters, meshID: meshID}
	addrs := map[string]string{}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		f := fmt.Sprintf("listeners[%d]", i)
		if l.Name == "" {
			c.errorf("%s.name: required", f)
			continue
		}
		if _, dup := snap.listeners[l.Name]; dup {
			c.errorf("%s.name: duplicate %q", f, l.Name)
			continue
		}
		if _, port, err := net.SplitHostPort(l.Address); err != nil {
			c.errorf("%s.address: %v", f, err)
		} else if n, err := strconv.ParseUint(port, 10, 16); err != nil {
			c.errorf("%s.address: bad port %q", f, port)
		} else if other, dup := addrs[l.Address]; dup && n != 0 {
			c.errorf("%s.address: %s already used by listener %q", f, l.Address, other)
		}
		addrs[l.Address] = l.Name
		spec := &listenerSpec{name: l.Name, address: l.Address, h2c: l.H2C, trust: l.TrustForwarded}
		if l.Capture != nil {
			spec.capture = c.capture(f, cfg, l)
		} else if spec.hosts = c.tables[l.RouteTable]; spec.hosts == nil {
			c.errorf("%s.routeTable: no route table %q", f, l.RouteTable)
		}
		if l.TLS != nil {
			spec.tls = true
			spec.certs = c.certTable(f+".tls", l.TLS, certByName)
		}
		snap.listeners[l.Name] = spec
	}
	if len(c.errs) > 0 {
		return nil, nil, fmt.Errorf("config %q: %w: %w", cfg.Version, errdefs.ErrInvalid, errors.Join(c.errs...))
	}
	return snap, c.pending, nil
}

func (c *compiler) cluster(i int, in *Cluster) {
	f := fmt.Sprintf("clusters[%d]", i)
	if in.Name == "" {
		c.errorf("%s.name: required", f)
		return
	}
	if _, dup := c.clusters[in.Name]; dup {
		c.errorf("%s.name: duplicate %q", f, in.Name)
		return
	}
	set := clusterSettings{lb: in.LB, protocol: in.Protocol, connectTimeout: in.ConnectTimeout,
		maxIdle: in.MaxIdlePerEndpoint, idleTimeout: in.IdleTimeout}
	switch set.lb {
	case "":
		set.lb = LBRoundRobin
	case LBRoundRobin, LBLeastRequest, LBRandom, LBConsistentHash:
	default:
		c.errorf("%s.lb: unknown policy %q", f, in.LB)
	}
	switch set.protocol {
	case "":
		set.protocol = ProtocolHTTP1
	case ProtocolHTTP1, ProtocolH2C:
	default:
		c.errorf("%s.protocol: unknown protocol %q", f, in.Protocol)
	}
	if set.connectTimeout < 0 || set.maxIdle < 0 || set.idleTimeout < 0 {
		c.errorf("%s: timeouts and pool sizes must not be negative", f)
	}
	if set.connectTimeout == 0 {
		set.connectTimeout = DefaultConnectTimeout
	}
	if set.maxIdle == 0 {
		set.maxIdle = DefaultMaxIdlePerEndpoint
	}
	if set.idleTimeout == 0 {
		set.idleTimeout = DefaultIdleTimeout
	}
	c.trafficPolicy(in, &set)
	if err := validateEndpoints(in.Endpoints); err != nil {
		c.errorf("%s.%v", f, err)
	}
	if c.prev != nil {
		if old := c.prev.clusters[in.Name]; old != nil && old.settings == set {
			c.clusters[in.Name] = old
			c.pending[old] = in.Endpoints
			return
		}
	}
	if len(c.errs) > 0 {
		c.clusters[in.Name] = newCluster(in.Name, set) // for routes' references only
		return
	}
	c.clusters[in.Name] = buildCluster(in, set)
}

func validateEndpoints(eps []Endpoint) error {
	for j, ep := range eps {
		host, port, err := net.SplitHostPort(ep.Address)
		if err != nil {
			return fmt.Errorf("endpoints[%d].address: %v", j, err)
		}
		if host == "" {
			return fmt.Errorf("endpoints[%d].address: host required in %q", j, ep.Address)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("endpoints[%d].address: bad port in %q", j, ep.Address)
		}
	}
	return nil
}

func (c *compiler) table(i int, in *RouteTable) {
	f := fmt.Sprintf("routeTables[%d]", i)
	if in.Name == "" {
		c.errorf("%s.name: required", f)
		return
	}
	if _, dup := c.tables[in.Name]; dup {
		c.errorf("%s.name: duplicate %q", f, in.Name)
		return
	}
	t := &hostTable{exact: map[string]*vhost{}, wildcard: map[string]*vhost{}, singleLabel: in.SingleLabelWildcards}
	for j := range in.VirtualHosts {
		vin := &in.VirtualHosts[j]
		vf := fmt.Sprintf("%s.virtualHosts[%d]", f, j)
		v := &vhost{name: vin.Name}
		if len(vin.Domains) == 0 {
			c.errorf("%s.domains: at least one required", vf)
		}
		for k, d := range vin.Domains {
			df := fmt.Sprintf("%s.domains[%d]", vf, k)
			d = strings.ToLower(strings.TrimSuffix(d, "."))
			var slot map[string]*vhost
			key := d
			switch {
			case d == "*":
				if t.any != nil {
					c.errorf("%s: \"*\" already served by virtual host %q", df, t.any.name)
				}
				t.any = v
				continue
			case strings.HasPrefix(d, "*."):
				slot, key = t.wildcard, d[1:]
			default:
				slot = t.exact
			}
			if err := validDomain(strings.TrimPrefix(d, "*.")); err != nil {
				c.errorf("%s: %v", df, err)
				continue
			}
			if other, dup := slot[key]; dup {
				c.errorf("%s: %q already served by virtual host %q", df, d, other.name)
				continue
			}
			slot[key] = v
		}
		for k := range vin.Routes {
			if r := c.route(fmt.Sprintf("%s.routes[%d]", vf, k), vin.Name, &vin.Routes[k]); r != nil {
				v.routes = append(v.routes, r)
			}
		}
	}
	c.tables[in.Name] = t
}

func validDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if strings.ContainsAny(d, "*/ \t:") && !strings.HasPrefix(d, "[") {
		return fmt.Errorf("bad domain %q (no port, one leading \"*.\" at most)", d)
	}
	return nil
}

func (c *compiler) route(f, vhostName string, in *Route) *route {
	r := &route{name: in.Name, vhost: vhostName, timeout: in.Timeout}
	if in.Timeout < 0 {
		c.errorf("%s.timeout: negative", f)
	}
	c.matcher(f+".match", &in.Match, &r.match)
	actions := 0
	if len(in.Clusters) > 0 {
		actions++
		r.kind = actionForward
		for k, wc := range in.Clusters {
			cl := c.clusters[wc.Cluster]
			if cl == nil {
				c.errorf("%s.clusters[%d].cluster: no cluster %q", f, k, wc.Cluster)
				continue
			}
			if cl.settings.tcp {
				c.errorf("%s.clusters[%d].cluster: %q is a TCP cluster", f, k, wc.Cluster)
			}
			w := wc.Weight
			if len(in.Clusters) == 1 {
				w = 1
			}
			r.targets = append(r.targets, target{cluster: cl, weight: w,
				reqHeaders:  c.headerOps(fmt.Sprintf("%s.clusters[%d].requestHeaders", f, k), &wc.RequestHeaders),
				respHeaders: c.headerOps(fmt.Sprintf("%s.clusters[%d].responseHeaders", f, k), &wc.ResponseHeaders)})
			r.totalWeight += w
		}
		if r.totalWeight == 0 && len(r.targets) > 0 {
			c.errorf("%s.clusters: weights sum to zero", f)
		}
	}
	if in.Redirect != nil {
		actions++
		r.kind = actionRedirect
		r.redirect = *in.Redirect
		switch r.redirect.Code {
		case 0:
			r.redirect.Code = http.StatusMovedPermanently
		case 301, 302, 303, 307, 308:
		default:
			c.errorf("%s.redirect.code: %d is not a redirect", f, in.Redirect.Code)
		}
		if s := r.redirect.Scheme; s != "" && s != "http" && s != "https" {
			c.errorf("%s.redirect.scheme: %q", f, s)
		}
		if p := r.redirect.Path; p != "" && p[0] != '/' {
			c.errorf("%s.redirect.path: must start with /", f)
		}
		if r.redirect.Port > 65535 {
			c.errorf("%s.redirect.port: %d", f, r.redirect.Port)
		}
	}
	if d := in.DirectResponse; d != nil {
		actions++
		r.kind = actionDirect
		if d.Status < 200 || d.Status > 599 {
			c.errorf("%s.directResponse.status: %d", f, d.Status)
		}
		r.direct = directResponse{status: d.Status, body: []byte(d.Body),
			length: []string{strconv.Itoa(len(d.Body))}}
		if d.ContentType != "" {
			r.direct.contentType = []string{d.ContentType}
		} else if d.Body != "" {
			r.direct.contentType = []string{"text/plain; charset=utf-8"}
		}
	}
	if actions != 1 {
		c.errorf("%s: exactly one of clusters, redirect and directResponse required (have %d)", f, actions)
	}
	if rw := in.Rewrite; rw != nil {
		r.rewrite = *rw
		if rw.Prefix != "" && rw.Prefix[0] != '/' {
			c.errorf("%s.rewrite.prefix: must start with /", f)
		}
		if rw.Regex != "" {
			re, err := regexp.Compile(rw.Regex)
			if err != nil {
				c.errorf("%s.rewrite.regex: %v", f, err)
			}
			r.rewriteRe = re
		}
	}
	pol := in.Retry
	if pol == nil {
		pol = &DefaultRetry
	}
	r.retry = c.retry(f+".retry", pol)
	r.reqHeaders = c.headerOps(f+".requestHeaders", &in.RequestHeaders)
	r.respHeaders = c.headerOps(f+".responseHeaders", &in.ResponseHeaders)
	if in.Name != "" {
		f += "(" + in.Name + ")" // these errors name the route too
	}
	r.fault = c.fault(f+".fault", in.Fault)
	r.mirrors = c.mirrors(f+".mirrors", in.Mirrors)
	r.cors = c.cors(f+".cors", in.CORS)
	return r
}

func (c *compiler) matcher(f string, in *RouteMatch, m *routeMatcher) {
	pm := &m.path
	pm.kind, pm.value, pm.ignoreCase = in.Path.Kind, in.Path.Value, in.Path.IgnoreCase
	switch in.Path.Kind {
	case PathAny:
		if in.Path.Value != "" {
			c.errorf("%s.path: a value needs a kind", f)
		}
	case PathExact, PathPrefix, PathSegmentPrefix:
		if !strings.HasPrefix(in.Path.Value, "/") {
			c.errorf("%s.path.value: %q must start with /", f, in.Path.Value)
		}
		if in.Path.Kind == PathSegmentPrefix {
			pm.value = strings.TrimSuffix(in.Path.Value, "/")
		}
	case PathRegex:
		expr := in.Path.Value
		if in.Path.IgnoreCase {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile("^(?:" + expr + ")$")
		if err != nil {
			c.errorf("%s.path.value: %v", f, err)
		}
		pm.re = re
	default:
		c.errorf("%s.path.kind: unknown %q", f, in.Path.Kind)
	}
	for _, meth := range in.Methods {
		m.methods = append(m.methods, strings.ToUpper(meth))
	}
	for k, h := range in.Headers {
		hf := fmt.Sprintf("%s.headers[%d]", f, k)
		if h.Name == "" {
			c.errorf("%s.name: required", hf)
		}
		name := h.Name
		if !strings.HasPrefix(name, ":") {
			name = http.CanonicalHeaderKey(name)
		} else if name != ":authority" && name != ":method" && name != ":path" && name != ":scheme" {
			c.errorf("%s.name: unknown pseudo-header %q", hf, name)
		}
		m.headers = append(m.headers, headerMatcher{name: name, m: c.stringMatcher(hf, h.StringMatch), invert: h.Invert})
	}
	for k, q := range in.QueryParams {
		qf := fmt.Sprintf("%s.queryParams[%d]", f, k)
		if q.Name == "" {
			c.errorf("%s.name: required", qf)
		}
		m.query = append(m.query, queryMatcher{name: q.Name, m: c.stringMatcher(qf, q.StringMatch)})
	}
}

func (c *compiler) stringMatcher(f string, in StringMatch) stringMatcher {
	m := stringMatcher{kind: in.Kind, value: in.Value}
	switch in.Kind {
	case StringExact, StringPrefix, StringSuffix, StringPresent:
	case StringRegex:
		re, err := regexp.Compile("^(?:" + in.Value + ")$")
		if err != nil {
			c.errorf("%s.value: %v", f, err)
		}
		m.re = re
	default:
		c.errorf("%s.kind: unknown %q", f, in.Kind)
	}
	return m
}

func (c *compiler) headerOps(f string, in *HeaderOps) headerOps {
	var o headerOps
	for k, h := range in.Set {
		if !validHeaderName(h.Name) {
			c.errorf("%s.set[%d].name: bad header name %q", f, k, h.Name)
		}
		o.set = append(o.set, headerKV{name: http.CanonicalHeaderKey(h.Name), vals: []string{h.Value}})
	}
	for k, h := range in.Add {
		if !validHeaderName(h.Name) {
			c.errorf("%s.add[%d].name: bad header name %q", f, k, h.Name)
		}
		o.add = append(o.add, headerKV{name: http.CanonicalHeaderKey(h.Name), vals: []string{h.Value}})
	}
	for k, name := range in.Remove {
		if !validHeaderName(name) {
			c.errorf("%s.remove[%d]: bad header name %q", f, k, name)
		}
		o.remove = append(o.remove, http.CanonicalHeaderKey(name))
	}
	for _, kv := range append(o.set, o.add...) {
		if strings.ContainsAny(kv.vals[0], "\r\n\x00") {
			c.errorf("%s: value of %s has a line break", f, kv.name)
		}
	}
	return o
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", ch) >= 0 {
			return false
		}
	}
	return true
}

func (c *compiler) retry(f string, in *RetryPolicy) retryPolicy {
	p := retryPolicy{attempts: in.Attempts, perTry: in.PerTryTimeout, codes: in.StatusCodes}
	if in.Attempts < 0 || in.Attempts > 10 {
		c.errorf("%s.attempts: %d (0 to 10)", f, in.Attempts)
	}
	if in.PerTryTimeout < 0 {
		c.errorf("%s.perTryTimeout: negative", f)
	}
	for k, on := range in.On {
		switch on {
		case RetryConnectFailure:
			p.on |= retryConnect
		case RetryRefusedStream:
			p.on |= retryRefused
		case RetryReset:
			p.on |= retryReset
		case Retry5xx:
			p.on |= retry5xx | retryReset | retryConnect | retryRefused
		case RetryGatewayError:
			p.on |= retryGateway | retryConnect
		case RetryRetriable4xx:
			p.on |= retry409
		case RetryStatusCodes:
			p.on |= retryCodes
		default:
			c.errorf("%s.on[%d]: unknown condition %q", f, k, on)
		}
	}
	for k, code := range in.StatusCodes {
		if code < 100 || code > 599 {
			c.errorf("%s.statusCodes[%d]: %d", f, k, code)
		}
	}
	return p
}

func (c *compiler) certTable(f string, in *ListenerTLS, byName map[string]*Certificate) *certTable {
	t := &certTable{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	if len(in.Certificates) == 0 {
		c.errorf("%s.certificates: at least one required", f)
		return t
	}
	for k, name := range in.Certificates {
		spec := byName[name]
		if spec == nil {
			c.errorf("%s.certificates[%d]: no certificate %q", f, k, name)
			continue
		}
		cert, err := c.certs(spec)
		if err != nil {
			c.errorf("%s.certificates[%d]: certificate %q: %v", f, k, name, err)
			continue
		}
		if t.def == nil && in.DefaultCertificate == "" {
			t.def = cert
		}
		if name == in.DefaultCertificate {
			t.def = cert
		}
		t.add(spec.Hosts, cert)
	}
	if in.DefaultCertificate != "" && t.def == nil {
		c.errorf("%s.defaultCertificate: %q is not among the listener's certificates", f, in.DefaultCertificate)
	}
	return t
}
