package authz

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"skiff.dev/skiff/internal/errdefs"
)

// Request is what policies see of a request.
type Request struct {
	Method string
	// Host is the request's authority as sent.
	Host string
	// Path is normalised (NormalizePath) and without the query.
	Path    string
	Headers http.Header
	// SourceIP is the peer's address; RemoteIP the original client's
	// (X-Forwarded-For, else SourceIP).
	SourceIP, RemoteIP netip.Addr
	// DestinationIP and DestinationPort are the connection's original
	// destination (0 / invalid when unknown).
	DestinationIP   netip.Addr
	DestinationPort uint16
	// SNI is the server name of a TLS connection.
	SNI string
	// SourcePrincipal is the peer's mesh identity without "spiffe://"
	// ("cluster.local/ns/NS/sa/SA"), empty without mTLS.
	SourcePrincipal string
	// Auth is the verified JWT, nil without one.
	Auth *Claims
}

// Claims is a verified JWT.
type Claims struct {
	Issuer    string
	Subject   string
	Audiences []string
	// Presenter is the azp claim.
	Presenter string
	// Claims is the whole payload.
	Claims map[string]any
	// SpaceDelimited are claims (besides "scope" and "permission") whose
	// string value policies also match word by word.
	SpaceDelimited []string
}

// spaceDelimited reports whether the claim at path is matched word by
// word.
func (c *Claims) spaceDelimited(path []string) bool {
	if len(path) != 1 {
		return false
	}
	if path[0] == "scope" || path[0] == "permission" {
		return true
	}
	for _, n := range c.SpaceDelimited {
		if n == path[0] {
			return true
		}
	}
	return false
}

// Principal is the request principal, "ISS/SUB".
func (c *Claims) Principal() string { return c.Issuer + "/" + c.Subject }

// Decision is an Engine's answer for one request.
type Decision struct {
	Allowed bool
	// Policy ("namespace/name") and Rule (its index) are what decided:
	// the DENY rule that matched, or the ALLOW rule that matched. Policy
	// is empty when no policy applied or no ALLOW policy matched.
	Policy string
	Rule   int
	// Audited lists "ns/name rule N" of the AUDIT rules that matched;
	// DryRun lists what dry-run policies would have decided.
	Audited []string
	DryRun  []string
}

// Reason says why, for logs ("denied by DENY policy ns/name rule 0",
// "no ALLOW policy matched", ...).
func (d Decision) Reason() string {
	switch {
	case !d.Allowed && d.Policy != "":
		return fmt.Sprintf("denied by DENY policy %s rule %d", d.Policy, d.Rule)
	case !d.Allowed:
		return "no ALLOW policy matched"
	case d.Policy != "":
		return fmt.Sprintf("allowed by ALLOW policy %s rule %d", d.Policy, d.Rule)
	}
	return "no ALLOW policy applies"
}

// Engine enforces one Config. It is immutable; a new Config makes a new
// Engine. Its methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	deny   []*policy
	allow  []*policy
	audit  []*policy
	dryRun []*policy
	jwt    *authenticator
}

type policy struct {
	ref    string // namespace/name
	action Action
	rules  []*rule
	// tcpRules are rules as they apply to TCP connections (nil where a
	// rule does not apply).
	tcpRules []*rule
}

type rule struct {
	from []*fieldSet // any
	to   []*fieldSet // any
	when *fieldSet   // all
}

// fieldSet is a conjunction of fields.
type fieldSet struct{ fields []*field }

func (s *fieldSet) add(f *field) {
	if f != nil {
		s.fields = append(s.fields, f)
	}
}

func (s *fieldSet) match(r *Request) bool {
	for _, f := range s.fields {
		if !f.match(r) {
			return false
		}
	}
	return true
}

func (ru *rule) match(r *Request) bool {
	if !ru.when.match(r) {
		return false
	}
	if len(ru.from) > 0 && !anyMatch(ru.from, r) {
		return false
	}
	return len(ru.to) == 0 || anyMatch(ru.to, r)
}

func anyMatch(sets []*fieldSet, r *Request) bool {
	for _, s := range sets {
		if s.match(r) {
			return true
		}
	}
	return false
}

// matches returns the index of the first rule that matches, or -1.
func (p *policy) matches(r *Request, tcp bool) int {
	rules := p.rules
	if tcp {
		rules = p.tcpRules
	}
	for i, ru := range rules {
		if ru != nil && ru.match(r) {
			return i
		}
	}
	return -1
}

// New checks cfg and returns its Engine (errdefs.ErrInvalid for a
// policy or JWT rule it cannot enforce). log receives JWKS fetch
// problems; nil discards.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "authz")
	e := &Engine{cfg: cfg, log: log}
	for i := range cfg.Policies {
		p, err := compilePolicy(&cfg.Policies[i])
		if err != nil {
			return nil, err
		}
		switch {
		case cfg.Policies[i].DryRun:
			e.dryRun = append(e.dryRun, p)
		case p.action == Deny:
			e.deny = append(e.deny, p)
		case p.action == Allow:
			e.allow = append(e.allow, p)
		case p.action == Audit:
			e.audit = append(e.audit, p)
		}
	}
	a, err := newAuthenticator(cfg.JWT, log)
	if err != nil {
		return nil, err
	}
	e.jwt = a
	return e, nil
}

// empty reports whether the engine has nothing to enforce.
func (e *Engine) empty() bool {
	return len(e.deny)+len(e.allow)+len(e.audit)+len(e.dryRun) == 0 && len(e.jwt.rules) == 0
}

// Config is the configuration the engine enforces.
func (e *Engine) Config() Config { return e.cfg }

func compilePolicy(p *Policy) (*policy, error) {
	ref := p.Name
	if p.Namespace != "" {
		ref = p.Namespace + "/" + p.Name
	}
	out := &policy{ref: ref, action: p.Action}
	switch p.Action {
	case "", Allow:
		out.action = Allow
	case Deny, Audit:
	case Custom:
		return nil, fmt.Errorf("policy %s: action CUSTOM (external authorization) is not supported: %w", ref, errdefs.ErrInvalid)
	default:
		return nil, fmt.Errorf("policy %s: unknown action %q: %w", ref, p.Action, errdefs.ErrInvalid)
	}
	for i := range p.Rules {
		r, err := compileRule(&p.Rules[i], p.Namespace)
		if err != nil {
			return nil, fmt.Errorf("policy %s rule %d: %w: %w", ref, i, errdefs.ErrInvalid, err)
		}
		out.rules = append(out.rules, r)
		var tr *rule
		if t, ok := tcpRule(p.Rules[i], out.action); ok {
			if tr, err = compileRule(&t, p.Namespace); err != nil {
				return nil, fmt.Errorf("policy %s rule %d: %w: %w", ref, i, errdefs.ErrInvalid, err)
			}
		}
		out.tcpRules = append(out.tcpRules, tr)
	}
	return out, nil
}

// ValidateRule reports whether New can enforce r in a policy of
// namespace ns (nil if it can).
func ValidateRule(r Rule, ns string) error {
	_, err := compileRule(&r, ns)
	return err
}

// ValidateCondition reports whether New can enforce c in a policy of
// namespace ns.
func ValidateCondition(c Condition, ns string) error {
	_, err := compileCondition(c, ns)
	return err
}

func compileRule(r *Rule, ns string) (*rule, error) {
	out := &rule{when: &fieldSet{}}
	for i, s := range r.From {
		fs, err := compileSource(&s, ns)
		if err != nil {
			return nil, fmt.Errorf("from %d: %w", i, err)
		}
		out.from = append(out.from, fs)
	}
	for i, o := range r.To {
		fs, err := compileOperation(&o)
		if err != nil {
			return nil, fmt.Errorf("to %d: %w", i, err)
		}
		out.to = append(out.to, fs)
	}
	for _, c := range r.When {
		f, err := compileCondition(c, ns)
		if err != nil {
			return nil, err
		}
		out.when.add(f)
	}
	return out, nil
}

// fieldSpec is one field to compile into a set.
type fieldSpec struct {
	name         string
	values, nots []string
	mk           predFor
}

func compileSet(specs []fieldSpec) (*fieldSet, error) {
	fs := &fieldSet{}
	for _, s := range specs {
		f, err := compileField(s.values, s.nots, s.mk)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		fs.add(f)
	}
	return fs, nil
}

func compileSource(s *Source, ns string) (*fieldSet, error) {
	return compileSet([]fieldSpec{
		{"principals", s.Principals, s.NotPrincipals, principalPred},
		{"requestPrincipals", s.RequestPrincipals, s.NotRequestPrincipals, requestPrincipalPred},
		{"namespaces", s.Namespaces, s.NotNamespaces, namespacePred},
		{"serviceAccounts", s.ServiceAccounts, s.NotServiceAccounts, serviceAccountPred(ns)},
		{"trustDomains", s.TrustDomains, s.NotTrustDomains, trustDomainPred},
		{"ipBlocks", s.IPBlocks, s.NotIPBlocks, ipPred(func(r *Request) netip.Addr { return r.SourceIP })},
		{"remoteIpBlocks", s.RemoteIPBlocks, s.NotRemoteIPBlocks, ipPred(func(r *Request) netip.Addr { return r.RemoteIP })},
	})
}

func compileOperation(o *Operation) (*fieldSet, error) {
	return compileSet([]fieldSpec{
		{"hosts", o.Hosts, o.NotHosts, stringPred(func(r *Request) string { return r.Host }, true)},
		{"ports", o.Ports, o.NotPorts, portPred},
		{"methods", o.Methods, o.NotMethods, stringPred(func(r *Request) string { return r.Method }, false)},
		{"paths", o.Paths, o.NotPaths, pathPred},
	})
}

func compileCondition(c Condition, ns string) (*field, error) {
	mk, err := conditionPred(c.Key, ns)
	if err != nil {
		return nil, fmt.Errorf("when %q: %w", c.Key, err)
	}
	if len(c.Values) == 0 && len(c.NotValues) == 0 {
		return nil, fmt.Errorf("when %q: values or notValues required", c.Key)
	}
	f, err := compileField(c.Values, c.NotValues, mk)
	if err != nil {
		return nil, fmt.Errorf("when %q: %w", c.Key, err)
	}
	return f, nil
}

func conditionPred(key, ns string) (predFor, error) {
	switch key {
	case "source.ip":
		return ipPred(func(r *Request) netip.Addr { return r.SourceIP }), nil
	case "remote.ip":
		return ipPred(func(r *Request) netip.Addr { return r.RemoteIP }), nil
	case "destination.ip":
		return ipPred(func(r *Request) netip.Addr { return r.DestinationIP }), nil
	case "destination.port":
		return portPred, nil
	case "source.namespace":
		return namespacePred, nil
	case "source.principal":
		return principalPred, nil
	case "source.trustDomain":
		return trustDomainPred, nil
	case "source.serviceAccount":
		return serviceAccountPred(ns), nil
	case "connection.sni":
		return stringPred(func(r *Request) string { return r.SNI }, false), nil
	case "request.auth.principal":
		return requestPrincipalPred, nil
	case "request.auth.audiences":
		return listPred(func(r *Request) []string {
			if r.Auth == nil {
				return nil
			}
			return r.Auth.Audiences
		}), nil
	case "request.auth.presenter":
		return stringPred(func(r *Request) string {
			if r.Auth == nil {
				return ""
			}
			return r.Auth.Presenter
		}, false), nil
	}
	switch {
	case strings.HasPrefix(key, "request.headers"):
		names, err := bracketed(strings.TrimPrefix(key, "request.headers"))
		if err != nil || len(names) != 1 {
			return nil, fmt.Errorf("want request.headers[NAME]")
		}
		return headerPred(names[0]), nil
	case strings.HasPrefix(key, "request.auth.claims"):
		path, err := bracketed(strings.TrimPrefix(key, "request.auth.claims"))
		if err != nil {
			return nil, fmt.Errorf("want request.auth.claims[NAME]: %w", err)
		}
		return claimPred(path), nil
	case strings.HasPrefix(key, "experimental."):
		return nil, fmt.Errorf("experimental attributes are not supported")
	}
	return nil, fmt.Errorf("unknown attribute")
}

// Check decides r by Istio's order: DENY policies (any match denies),
// then ALLOW policies (when there are any, one must match), AUDIT and
// dry-run policies only reported.
func (e *Engine) Check(r *Request) Decision { return e.check(r, false) }

func (e *Engine) check(r *Request, tcp bool) Decision {
	var d Decision
	for _, p := range e.audit {
		if i := p.matches(r, tcp); i >= 0 {
			d.Audited = append(d.Audited, p.ref+" rule "+strconv.Itoa(i))
		}
	}
	for _, p := range e.dryRun {
		if i := p.matches(r, tcp); i >= 0 {
			d.DryRun = append(d.DryRun, fmt.Sprintf("%s %s policy %s rule %d", "would match", p.action, p.ref, i))
		} else if p.action == Allow {
			d.DryRun = append(d.DryRun, fmt.Sprintf("would not match ALLOW policy %s", p.ref))
		}
	}
	for _, p := range e.deny {
		if i := p.matches(r, tcp); i >= 0 {
			d.Policy, d.Rule = p.ref, i
			return d
		}
	}
	if len(e.allow) == 0 {
		d.Allowed = true
		return d
	}
	for _, p := range e.allow {
		if i := p.matches(r, tcp); i >= 0 {
			d.Allowed = true
			d.Policy, d.Rule = p.ref, i
			return d
		}
	}
	return d
}
