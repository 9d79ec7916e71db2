package authz

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// valueKind is how an Istio value compares.
type valueKind uint8

const (
	kindExact  valueKind = iota
	kindPrefix           // "abc*"
	kindSuffix           // "*abc"
	kindAny              // "*": any non-empty value
)

// valueMatch is one value in Istio's syntax.
type valueMatch struct {
	kind valueKind
	v    string
	fold bool // compare case-insensitively (hosts)
}

func parseValue(v string, fold bool) valueMatch {
	switch {
	case v == "*":
		return valueMatch{kind: kindAny}
	case strings.HasPrefix(v, "*"):
		return valueMatch{kind: kindSuffix, v: v[1:], fold: fold}
	case strings.HasSuffix(v, "*"):
		return valueMatch{kind: kindPrefix, v: v[:len(v)-1], fold: fold}
	}
	return valueMatch{kind: kindExact, v: v, fold: fold}
}

func (m valueMatch) match(s string) bool {
	switch m.kind {
	case kindAny:
		return s != ""
	case kindPrefix:
		if m.fold {
			return len(s) >= len(m.v) && strings.EqualFold(s[:len(m.v)], m.v)
		}
		return strings.HasPrefix(s, m.v)
	case kindSuffix:
		if m.fold {
			return len(s) >= len(m.v) && strings.EqualFold(s[len(s)-len(m.v):], m.v)
		}
		return strings.HasSuffix(s, m.v)
	}
	if m.fold {
		return strings.EqualFold(s, m.v)
	}
	return s == m.v
}

// pred is one compiled value of a field: does the request have it?
type pred func(r *Request) bool

// field is a compiled field or condition: one of values (if any) must
// match and none of nots may.
type field struct {
	values, nots []pred
}

func (f *field) match(r *Request) bool {
	if len(f.values) > 0 {
		ok := false
		for _, p := range f.values {
			if p(r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.nots {
		if p(r) {
			return false
		}
	}
	return true
}

// predFor compiles one value of an attribute.
type predFor func(value string) (pred, error)

// compileField compiles values and notValues with mk; an empty field is
// returned as nil.
func compileField(values, nots []string, mk predFor) (*field, error) {
	if len(values) == 0 && len(nots) == 0 {
		return nil, nil
	}
	f := &field{}
	for _, v := range values {
		p, err := mk(v)
		if err != nil {
			return nil, err
		}
		f.values = append(f.values, p)
	}
	for _, v := range nots {
		p, err := mk(v)
		if err != nil {
			return nil, err
		}
		f.nots = append(f.nots, p)
	}
	return f, nil
}

// stringPred matches the attribute get returns with Istio's value syntax.
func stringPred(get func(*Request) string, fold bool) predFor {
	return func(v string) (pred, error) {
		m := parseValue(v, fold)
		return func(r *Request) bool { return m.match(get(r)) }, nil
	}
}

// listPred matches when any of the values get returns matches.
func listPred(get func(*Request) []string) predFor {
	return func(v string) (pred, error) {
		m := parseValue(v, false)
		return func(r *Request) bool {
			for _, s := range get(r) {
				if m.match(s) {
					return true
				}
			}
			return false
		}, nil
	}
}

// ipPred matches an address attribute against an IP or CIDR.
func ipPred(get func(*Request) netip.Addr) predFor {
	return func(v string) (pred, error) {
		pfx, err := parsePrefix(v)
		if err != nil {
			return nil, err
		}
		return func(r *Request) bool {
			a := get(r)
			return a.IsValid() && pfx.Contains(a.Unmap())
		}, nil
	}
}

func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid IP block %q", v)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func portPred(v string) (pred, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", v)
	}
	p := uint16(n)
	return func(r *Request) bool { return r.DestinationPort != 0 && r.DestinationPort == p }, nil
}

// regexPred matches the attribute get returns against re (anchored).
func regexPred(get func(*Request) string, re *regexp.Regexp) pred {
	return func(r *Request) bool { return re.MatchString(get(r)) }
}

// spiffeOf is the peer's SPIFFE ID ("" without one).
func spiffeOf(r *Request) string {
	if r.SourcePrincipal == "" {
		return ""
	}
	return "spiffe://" + r.SourcePrincipal
}

// namespacePred matches the namespace in the peer's identity, as Istio:
// ".*/ns/NS/.*" on the SPIFFE ID, with "*" in NS standing for anything.
func namespacePred(v string) (pred, error) {
	if !strings.Contains(v, "*") {
		// The common case without a regexp: "/ns/NS/" anywhere in
		// "spiffe://" + principal.
		mid, start := "/ns/"+v+"/", "ns/"+v+"/"
		return func(r *Request) bool {
			p := r.SourcePrincipal
			return p != "" && (strings.Contains(p, mid) || strings.HasPrefix(p, start))
		}, nil
	}
	parts := strings.Split(v, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	re, err := regexp.Compile("^.*/ns/" + strings.Join(parts, ".*") + "/.*$")
	if err != nil {
		return nil, fmt.Errorf("invalid namespace %q", v)
	}
	return regexPred(spiffeOf, re), nil
}

// serviceAccountPred matches "NS/SA" (or "SA" in the policy's
// namespace) against the peer's identity.
func serviceAccountPred(defaultNS string) predFor {
	return func(v string) (pred, error) {
		ns, sa, ok := strings.Cut(v, "/")
		if !ok {
			ns, sa = defaultNS, v
		}
		if ns == "" || sa == "" {
			return nil, fmt.Errorf("invalid service account %q", v)
		}
		re, err := regexp.Compile("^spiffe://.+/ns/" + regexp.QuoteMeta(ns) + "/(.+/|)sa/" +
			regexp.QuoteMeta(sa) + "(/.+)?$")
		if err != nil {
			return nil, fmt.Errorf("invalid service account %q", v)
		}
		return regexPred(spiffeOf, re), nil
	}
}

// trustDomainPred matches the trust domain of the peer's identity.
func trustDomainPred(v string) (pred, error) {
	switch {
	case v == "*":
		return func(r *Request) bool { return r.SourcePrincipal != "" }, nil
	case !strings.Contains(v, "*"):
		return func(r *Request) bool { return strings.HasPrefix(r.SourcePrincipal, v+"/") }, nil
	}
	before, after, _ := strings.Cut(v, "*")
	re, err := regexp.Compile("^" + regexp.QuoteMeta(before) + "[^/]*" + regexp.QuoteMeta(after) + "/.*$")
	if err != nil {
		return nil, fmt.Errorf("invalid trust domain %q", v)
	}
	return regexPred(func(r *Request) string { return r.SourcePrincipal }, re), nil
}

// principalPred matches the peer's identity; only mTLS peers have one.
func principalPred(v string) (pred, error) {
	m := parseValue(v, false)
	return func(r *Request) bool { return r.SourcePrincipal != "" && m.match(r.SourcePrincipal) }, nil
}

// requestPrincipalPred matches "ISS/SUB" the way Istio does: issuer and
// subject separately, split at the last "/".
func requestPrincipalPred(v string) (pred, error) {
	anyNonEmpty := valueMatch{kind: kindAny}
	i := strings.LastIndex(v, "/")
	found := i >= 0
	iss, sub := v, ""
	if found {
		iss, sub = v[:i], v[i+1:]
	}
	var mi, ms valueMatch
	switch {
	case v == "*":
		mi, ms = anyNonEmpty, anyNonEmpty
	case strings.HasPrefix(v, "*"):
		if found {
			mi = valueMatch{kind: kindSuffix, v: strings.TrimPrefix(iss, "*")}
			if iss == "*" {
				mi = anyNonEmpty
			}
			ms = valueMatch{kind: kindExact, v: sub}
		} else {
			mi, ms = anyNonEmpty, valueMatch{kind: kindSuffix, v: v[1:]}
		}
	case strings.HasSuffix(v, "*"):
		if found {
			mi = valueMatch{kind: kindExact, v: iss}
			ms = valueMatch{kind: kindPrefix, v: strings.TrimSuffix(sub, "*")}
			if sub == "*" {
				ms = anyNonEmpty
			}
		} else {
			mi, ms = valueMatch{kind: kindPrefix, v: v[:len(v)-1]}, anyNonEmpty
		}
	default:
		mi, ms = valueMatch{kind: kindExact, v: iss}, valueMatch{kind: kindExact, v: sub}
	}
	return func(r *Request) bool {
		return r.Auth != nil && mi.match(r.Auth.Issuer) && ms.match(r.Auth.Subject)
	}, nil
}

// pathPred matches the normalised path; values may hold "{*}" and
// "{**}" templates.
func pathPred(v string) (pred, error) {
	if !strings.Contains(v, "{*}") && !strings.Contains(v, "{**}") {
		return stringPred(func(r *Request) string { return r.Path }, false)(v)
	}
	var b strings.Builder
	b.WriteString("^")
	rest := v
	for rest != "" {
		i := strings.Index(rest, "{*")
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "{**}"):
			b.WriteString(".*")
			rest = rest[4:]
		case strings.HasPrefix(rest, "{*}"):
			b.WriteString("[^/]+")
			rest = rest[3:]
		default:
			b.WriteString(regexp.QuoteMeta("{*"))
			rest = rest[2:]
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("invalid path template %q", v)
	}
	return regexPred(func(r *Request) string { return r.Path }, re), nil
}

// headerPred matches a request header as Envoy's header matcher does
// (values joined with ","; "*" only asks for presence).
func headerPred(name string) predFor {
	host := strings.EqualFold(name, "host") || name == ":authority"
	name = http.CanonicalHeaderKey(name)
	return func(v string) (pred, error) {
		m := parseValue(v, false)
		return func(r *Request) bool {
			vs, ok := r.Headers[name]
			if host {
				vs, ok = []string{r.Host}, r.Host != ""
			}
			if !ok {
				return false
			}
			if m.kind == kindAny {
				return true
			}
			return m.match(strings.Join(vs, ","))
		}, nil
	}
}

// claimPred matches a (nested) claim: a string, or a list of which any
// string element matches.
func claimPred(path []string) predFor {
	return func(v string) (pred, error) {
		m := parseValue(v, false)
		return func(r *Request) bool {
			if r.Auth == nil {
				return false
			}
			switch c := claimAt(r.Auth.Claims, path).(type) {
			case string:
				if m.match(c) {
					return true
				}
				if r.Auth.spaceDelimited(path) {
					for _, w := range strings.Fields(c) {
						if m.match(w) {
							return true
						}
					}
				}
			case []any:
				for _, e := range c {
					if s, ok := e.(string); ok && m.match(s) {
						return true
					}
				}
			case bool:
				return m.match(strconv.FormatBool(c))
			}
			return false
		}, nil
	}
}

func claimAt(claims map[string]any, path []string) any {
	var cur any = claims
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// bracketed splits "[a][b]" into a and b.
func bracketed(s string) ([]string, error) {
	var out []string
	for s != "" {
		if s[0] != '[' {
			return nil, fmt.Errorf("want [NAME], got %q", s)
		}
		end := strings.IndexByte(s, ']')
		if end <= 1 {
			return nil, fmt.Errorf("want [NAME], got %q", s)
		}
		out = append(out, s[1:end])
		s = s[end+1:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("missing [NAME]")
	}
	return out, nil
}
