package istio

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VirtualService validation, after istio/istio pkg/config/validation
// (ValidateVirtualService, validateHTTPRoute). Weights are not required
// to sum to 100: current Istio normalises them and only rejects several
// destinations that all weigh 0.

func validateVirtualService(vs *networking.VirtualService) field.ErrorList {
	var errs field.ErrorList
	p := specPath
	if len(vs.Hosts) == 0 {
		// A delegate VirtualService (no hosts) is only referenced by
		// another one's http[].delegate.
		if len(vs.Gateways) > 0 {
			errs = append(errs, field.Forbidden(p.Child("gateways"), "delegate virtual service (no hosts) must have no gateways specified"))
		}
		if len(vs.Tls) > 0 {
			errs = append(errs, field.Forbidden(p.Child("tls"), "delegate virtual service (no hosts) must have no tls route specified"))
		}
		if len(vs.Tcp) > 0 {
			errs = append(errs, field.Forbidden(p.Child("tcp"), "delegate virtual service (no hosts) must have no tcp route specified"))
		}
	}
	mesh := len(vs.Gateways) == 0
	for i, g := range vs.Gateways {
		if g == "mesh" {
			mesh = true
		}
		errs = append(errs, validateGatewayName(g, p.Child("gateways").Index(i))...)
	}
	seen := map[string]int{}
	for i, h := range vs.Hosts {
		hp := p.Child("hosts").Index(i)
		errs = append(errs, validateHost(h, hp, !mesh)...)
		if h == "*" && mesh {
			continue
		}
		if j, dup := seen[h]; dup {
			errs = append(errs, fmtInvalid(hp, h, "duplicate host in virtual service (also hosts[%d])", j))
		}
		seen[h] = i
	}
	if len(vs.Http) == 0 && len(vs.Tcp) == 0 && len(vs.Tls) == 0 {
		errs = append(errs, field.Required(p.Child("http"), "http, tcp or tls must be provided in virtual service"))
	}
	for i, r := range vs.Http {
		errs = append(errs, validateHTTPRoute(r, len(vs.Hosts) == 0, p.Child("http").Index(i))...)
	}
	for i, r := range vs.Tcp {
		rp := p.Child("tcp").Index(i)
		if r == nil {
			errs = append(errs, field.Required(rp, "tcp route may not be null"))
			continue
		}
		if len(r.Route) == 0 {
			errs = append(errs, field.Required(rp.Child("route"), "TCP route is required"))
		}
		errs = append(errs, validateDestinations(r.Route, rp.Child("route"))...)
	}
	for i, r := range vs.Tls {
		rp := p.Child("tls").Index(i)
		if r == nil {
			errs = append(errs, field.Required(rp, "tls route may not be null"))
			continue
		}
		if len(r.Match) == 0 {
			errs = append(errs, field.Required(rp.Child("match"), "TLS route must have at least one match condition"))
		}
		for j, m := range r.Match {
			if m != nil && len(m.SniHosts) == 0 {
				errs = append(errs, field.Required(rp.Child("match").Index(j).Child("sniHosts"), "TLS match must have at least one SNI host"))
			}
		}
		if len(r.Route) == 0 {
			errs = append(errs, field.Required(rp.Child("route"), "TLS route is required"))
		}
		errs = append(errs, validateDestinations(r.Route, rp.Child("route"))...)
	}
	for i, ns := range vs.ExportTo {
		errs = append(errs, validateExportTo(ns, p.Child("exportTo").Index(i))...)
	}
	return errs
}

func validateGatewayName(g string, p *field.Path) field.ErrorList {
	if g == "mesh" {
		return nil
	}
	ns, name, ok := strings.Cut(g, "/")
	if !ok {
		name, ns = g, ""
	}
	if ok && ns == "" || name == "" {
		return field.ErrorList{field.Invalid(p, g, "config namespace and gateway name cannot be empty")}
	}
	if ns != "" {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return field.ErrorList{field.Invalid(p, g, "invalid namespace: "+msgs[0])}
		}
	}
	// The name may be a short name or a FQDN (gateway.namespace.svc...).
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(p, g, "invalid gateway name: "+msgs[0])}
	}
	return nil
}

func validateExportTo(ns string, p *field.Path) field.ErrorList {
	if ns == "." || ns == "*" || ns == "~" {
		return nil
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(p, ns, `must be ".", "*", "~" or a namespace name`)}
	}
	return nil
}

func validateHTTPRoute(r *networking.HTTPRoute, delegate bool, p *field.Path) field.ErrorList {
	if r == nil {
		return field.ErrorList{field.Required(p, "http route may not be null")}
	}
	var errs field.ErrorList
	actions := 0
	for _, set := range []bool{len(r.Route) > 0, r.Redirect != nil, r.DirectResponse != nil, r.Delegate != nil} {
		if set {
			actions++
		}
	}
	switch {
	case actions == 0:
		errs = append(errs, field.Required(p.Child("route"), "HTTP route, redirect, directResponse or delegate is required"))
	case actions > 1:
		errs = append(errs, field.Invalid(p, "", "only one of route, redirect, directResponse or delegate may be set"))
	}
	if delegate && r.Delegate != nil {
		errs = append(errs, field.Forbidden(p.Child("delegate"), "delegate virtual service cannot delegate again"))
	}
	for i, m := range r.Match {
		errs = append(errs, validateHTTPMatch(m, p.Child("match").Index(i))...)
	}
	errs = append(errs, validateDestinations(r.Route, p.Child("route"))...)
	errs = append(errs, validateDuration(r.Timeout, p.Child("timeout"))...)
	errs = append(errs, validateRetries(r.Retries, p.Child("retries"))...)
	errs = append(errs, validateFault(r.Fault, p.Child("fault"))...)
	if r.Mirror != nil {
		errs = append(errs, validateDestination(r.Mirror, p.Child("mirror"))...)
	}
	if r.MirrorPercent != nil && r.MirrorPercent.GetValue() > 100 {
		errs = append(errs, field.Invalid(p.Child("mirrorPercent"), r.MirrorPercent.GetValue(), "must be in the range 0..100"))
	}
	if r.MirrorPercentage != nil {
		errs = append(errs, validateFraction(r.MirrorPercentage.GetValue(), p.Child("mirrorPercentage", "value"))...)
	}
	for i, m := range r.Mirrors {
		mp := p.Child("mirrors").Index(i)
		if m == nil || m.Destination == nil {
			errs = append(errs, field.Required(mp.Child("destination"), "mirror destination is required"))
			continue
		}
		errs = append(errs, validateDestination(m.Destination, mp.Child("destination"))...)
		if m.Percentage != nil {
			errs = append(errs, validateFraction(m.Percentage.GetValue(), mp.Child("percentage", "value"))...)
		}
	}
	if d := r.DirectResponse; d != nil && (d.Status < 200 || d.Status > 599) {
		errs = append(errs, field.Invalid(p.Child("directResponse", "status"), d.Status, "must be in the range 200..599"))
	}
	if rd := r.Redirect; rd != nil && rd.RedirectCode != 0 && (rd.RedirectCode < 300 || rd.RedirectCode > 399) {
		errs = append(errs, field.Invalid(p.Child("redirect", "redirectCode"), rd.RedirectCode, "must be in the range 300..399"))
	}
	if c := r.CorsPolicy; c != nil {
		for i, o := range c.AllowOrigins {
			errs = append(errs, validateStringMatch(o, p.Child("corsPolicy", "allowOrigins").Index(i))...)
		}
		errs = append(errs, validateDuration(c.MaxAge, p.Child("corsPolicy", "maxAge"))...)
	}
	return errs
}

func validateHTTPMatch(m *networking.HTTPMatchRequest, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	var errs field.ErrorList
	for _, name := range sets.List(sets.KeySet(m.Headers)) {
		hp := p.Child("headers").Key(name)
		if msgs := validation.IsHTTPHeaderName(name); len(msgs) > 0 && !strings.HasPrefix(name, "@request.auth.claims.") {
			errs = append(errs, field.Invalid(hp, name, "invalid header name: "+msgs[0]))
		}
		if m.Headers[name] == nil {
			errs = append(errs, field.Required(hp, "header match may not be null"))
			continue
		}
		errs = append(errs, validateStringMatch(m.Headers[name], hp)...)
	}
	for _, name := range sets.List(sets.KeySet(m.WithoutHeaders)) {
		if h := m.WithoutHeaders[name]; h != nil && h.GetRegex() != "*" {
			errs = append(errs, validateStringMatch(h, p.Child("withoutHeaders").Key(name))...)
		}
	}
	for _, name := range sets.List(sets.KeySet(m.QueryParams)) {
		errs = append(errs, validateStringMatch(m.QueryParams[name], p.Child("queryParams").Key(name))...)
	}
	errs = append(errs, validateStringMatch(m.Uri, p.Child("uri"))...)
	errs = append(errs, validateStringMatch(m.Scheme, p.Child("scheme"))...)
	errs = append(errs, validateStringMatch(m.Method, p.Child("method"))...)
	errs = append(errs, validateStringMatch(m.Authority, p.Child("authority"))...)
	if m.Port != 0 {
		errs = append(errs, validatePort(m.Port, p.Child("port"))...)
	}
	errs = append(errs, validateLabels(m.SourceLabels, p.Child("sourceLabels"))...)
	for i, g := range m.Gateways {
		errs = append(errs, validateGatewayName(g, p.Child("gateways").Index(i))...)
	}
	if ns := m.SourceNamespace; ns != "" {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("sourceNamespace"), ns, msgs[0]))
		}
	}
	return errs
}

// validateStringMatch checks that regular expressions compile (RE2, as
// Envoy's) and that exact and prefix matches are not empty where Envoy
// needs them (any match but uri's prefix).
func validateStringMatch(m *networking.StringMatch, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	switch t := m.MatchType.(type) {
	case *networking.StringMatch_Regex:
		rp := p.Child("regex")
		if t.Regex == "" {
			return field.ErrorList{field.Required(rp, "regex match may not be empty")}
		}
		if _, err := regexp.Compile(t.Regex); err != nil {
			return field.ErrorList{field.Invalid(rp, t.Regex, "not a valid RE2 regular expression: "+err.Error())}
		}
	case *networking.StringMatch_Exact:
		if t.Exact == "" && p.String() != "" && !strings.HasSuffix(p.String(), ".uri") {
			return field.ErrorList{field.Required(p.Child("exact"), "exact match may not be empty")}
		}
	case *networking.StringMatch_Prefix:
		if t.Prefix == "" && !strings.HasSuffix(p.String(), ".uri") {
			return field.ErrorList{field.Required(p.Child("prefix"), "prefix match may not be empty")}
		}
	}
	return nil
}

// weightedDestination is an HTTP or TCP/TLS route destination.
type weightedDestination interface {
	comparable
	GetDestination() *networking.Destination
	GetWeight() int32
}

// validateDestinations checks each destination and its weight; several
// destinations may not all weigh 0.
func validateDestinations[D weightedDestination](ds []D, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var total int64
	var null D
	for i, d := range ds {
		dp := p.Index(i)
		if d == null {
			errs = append(errs, field.Required(dp, "route destination may not be null"))
			continue
		}
		errs = append(errs, validateDestination(d.GetDestination(), dp.Child("destination"))...)
		errs = append(errs, validateWeight(d.GetWeight(), dp.Child("weight"))...)
		total += int64(d.GetWeight())
	}
	if len(ds) > 1 && total == 0 {
		errs = append(errs, field.Invalid(p, "", "total destination weight = 0"))
	}
	return errs
}

// validateWeight allows any weight from 0 to 100: Istio normalises the
// weights of a route's destinations when they do not add up to 100.
func validateWeight(w int32, p *field.Path) field.ErrorList {
	if w < 0 || w > 100 {
		return field.ErrorList{field.Invalid(p, w, "must be in the range 0..100")}
	}
	return nil
}

func validateDestination(d *networking.Destination, p *field.Path) field.ErrorList {
	if d == nil {
		return field.ErrorList{field.Required(p, "destination is required")}
	}
	errs := validateHost(d.Host, p.Child("host"), false)
	if d.Subset != "" {
		if msgs := validation.IsDNS1123Label(d.Subset); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("subset"), d.Subset, "subset name is invalid: "+msgs[0]))
		}
	}
	if d.Port != nil {
		errs = append(errs, validatePort(d.Port.Number, p.Child("port", "number"))...)
	}
	return errs
}

// retryOn lists Envoy's retry conditions that Istio accepts, besides HTTP
// status codes.
var retryOn = sets.New(
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
)

func validateRetries(r *networking.HTTPRetry, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if r.Attempts < 0 {
		errs = append(errs, field.Invalid(p.Child("attempts"), r.Attempts, "attempts cannot be negative"))
	}
	if r.Attempts == 0 && (r.PerTryTimeout != nil || r.RetryOn != "" || r.RetryRemoteLocalities != nil) {
		errs = append(errs, field.Invalid(p.Child("attempts"), r.Attempts, "http retry policy configured when attempts are set to 0 (disabled)"))
	}
	errs = append(errs, validateDuration(r.PerTryTimeout, p.Child("perTryTimeout"))...)
	errs = append(errs, validateDuration(r.Backoff, p.Child("backoff"))...)
	if r.RetryOn != "" {
		for _, c := range strings.Split(r.RetryOn, ",") {
			c = strings.TrimSpace(c)
			if n, err := strconv.Atoi(c); err == nil && http.StatusText(n) != "" {
				continue
			}
			if !retryOn.Has(c) {
				errs = append(errs, fmtInvalid(p.Child("retryOn"), r.RetryOn, "%q is not a valid retryOn policy", c))
			}
		}
	}
	return errs
}

func validateFault(f *networking.HTTPFaultInjection, p *field.Path) field.ErrorList {
	if f == nil {
		return nil
	}
	var errs field.ErrorList
	if f.Abort == nil && f.Delay == nil {
		errs = append(errs, field.Required(p, "one of delay or abort must be set"))
	}
	if a := f.Abort; a != nil {
		ap := p.Child("abort")
		if a.Percentage != nil {
			errs = append(errs, validateFraction(a.Percentage.GetValue(), ap.Child("percentage", "value"))...)
		}
		switch t := a.ErrorType.(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			if t.HttpStatus < 200 || t.HttpStatus > 600 {
				errs = append(errs, field.Invalid(ap.Child("httpStatus"), t.HttpStatus, "must be in the range 200..600"))
			}
		case nil:
			errs = append(errs, field.Required(ap.Child("httpStatus"), "abort needs httpStatus, grpcStatus or http2Error"))
		}
	}
	if d := f.Delay; d != nil {
		dp := p.Child("delay")
		if d.Percentage != nil {
			errs = append(errs, validateFraction(d.Percentage.GetValue(), dp.Child("percentage", "value"))...)
		}
		errs = append(errs, validatePercent(d.Percent, dp.Child("percent"))...)
		switch t := d.HttpDelayType.(type) {
		case *networking.HTTPFaultInjection_Delay_FixedDelay:
			errs = append(errs, validateDuration(t.FixedDelay, dp.Child("fixedDelay"))...)
		case *networking.HTTPFaultInjection_Delay_ExponentialDelay:
			errs = append(errs, field.NotSupported(dp.Child("exponentialDelay"), "exponentialDelay", []string{"fixedDelay"}))
		case nil:
			errs = append(errs, field.Required(dp.Child("fixedDelay"), "delay needs fixedDelay"))
		}
	}
	return errs
}
