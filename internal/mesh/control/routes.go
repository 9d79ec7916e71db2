package control

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// IstioDefaultRetry is the retry policy of routes whose VirtualService
// says none, as Istio's (attempts 2, "connect-failure,refused-stream,
// unavailable,cancelled,retriable-status-codes" with 503; the gRPC
// conditions are left out, see the package doc).
var IstioDefaultRetry = proxy.RetryPolicy{
	Attempts:    2,
	On:          []proxy.RetryOn{proxy.RetryConnectFailure, proxy.RetryRefusedStream, proxy.RetryStatusCodes},
	StatusCodes: []int{503},
}

// vsFor is the VirtualService that routes host for sidecars: the oldest
// whose hosts name it exactly, else the oldest whose wildcard covers it.
// VirtualServices that do not validate were left out by NewIndex (with
// a warning).
func (b *builder) vsFor(host string) *networkingv1.VirtualService {
	if vs := b.x.vsByHost[host]; vs != nil {
		return vs
	}
	for _, w := range b.x.vsWildcards {
		if hostMatches(w.host, host) {
			return w.vs
		}
	}
	return nil
}

func checkVS(spec *networkingapi.VirtualService) error {
	re := func(what, s string) error {
		if _, err := regexp.Compile(s); err != nil {
			return fmt.Errorf("%s: bad regex %q", what, s)
		}
		return nil
	}
	sm := func(what string, m *networkingapi.StringMatch) error {
		if r, ok := m.GetMatchType().(*networkingapi.StringMatch_Regex); ok {
			return re(what, r.Regex)
		}
		return nil
	}
	for i, h := range spec.Http {
		if h == nil {
			continue
		}
		f := fmt.Sprintf("http[%d]", i)
		for _, m := range h.Match {
			if m == nil {
				continue
			}
			for _, part := range []*networkingapi.StringMatch{m.Uri, m.Method, m.Authority, m.Scheme} {
				if err := sm(f+".match", part); err != nil {
					return err
				}
			}
			for _, mm := range []map[string]*networkingapi.StringMatch{m.Headers, m.WithoutHeaders, m.QueryParams} {
				for _, k := range slices.Sorted(maps.Keys(mm)) {
					if err := sm(f+".match."+k, mm[k]); err != nil {
						return err
					}
				}
			}
		}
		if r := h.Rewrite; r != nil && r.UriRegexRewrite != nil {
			if err := re(f+".rewrite.uriRegexRewrite", r.UriRegexRewrite.Match); err != nil {
				return err
			}
		}
		if c := h.CorsPolicy; c != nil {
			for _, o := range c.AllowOrigins {
				if err := sm(f+".corsPolicy.allowOrigins", o); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// httpRoutes are the routes of svc's HTTP port sp: its VirtualService's,
// or the default route to the service.
func (b *builder) httpRoutes(svc *service, sp *servicePort) []proxy.Route {
	vs := b.vsFor(svc.host)
	if vs == nil {
		retry := IstioDefaultRetry
		return []proxy.Route{{
			Name:     "default",
			Clusters: []proxy.WeightedCluster{{Cluster: b.cluster(svc, sp, "")}},
			Retry:    &retry,
		}}
	}
	return b.vsRoutes(vs, sp.port)
}

// vsRoutes are a VirtualService's HTTP routes, as a sidecar sees them,
// for requests that came on port.
func (b *builder) vsRoutes(vs *networkingv1.VirtualService, port uint32) []proxy.Route {
	return b.routesOf(vs, port, func(m *networkingapi.HTTPMatchRequest) bool {
		return b.matchApplies(m.Port, m.SourceLabels, m.SourceNamespace, m.Gateways, vs.Namespace, port)
	})
}

// routesOf are vs's HTTP routes for requests that came on port, keeping
// the matches whose proxy-side conditions hold (applies); an HTTP route
// all of whose matches were dropped is left out.
func (b *builder) routesOf(vs *networkingv1.VirtualService, port uint32, applies func(*networkingapi.HTTPMatchRequest) bool) []proxy.Route {
	var out []proxy.Route
	for i, h := range vs.Spec.Http {
		if h == nil {
			continue
		}
		name := h.Name
		if name == "" {
			name = fmt.Sprintf("%s/%s#%d", vs.Namespace, vs.Name, i)
		}
		var matches []*networkingapi.HTTPMatchRequest
		for _, m := range h.Match {
			if m != nil && applies(m) {
				matches = append(matches, m)
			}
		}
		if len(h.Match) > 0 && len(matches) == 0 {
			continue
		}
		r, ok := b.httpAction(vs, h, port)
		if !ok {
			continue
		}
		r.Name = name
		if len(matches) == 0 {
			out = append(out, r)
			continue
		}
		for _, m := range matches {
			rm := r
			rm.Match = routeMatch(m)
			out = append(out, rm)
		}
	}
	return out
}

// matchApplies says whether a match's proxy-side conditions hold for
// this proxy on this port (sourceLabels are the proxy's own pod's).
func (b *builder) matchApplies(port uint32, sourceLabels map[string]string, sourceNamespace string, gateways []string, vsNamespace string, svcPort uint32) bool {
	return (port == 0 || port == svcPort) &&
		labelsMatch(sourceLabels, b.pod.Labels) &&
		(sourceNamespace == "" || sourceNamespace == b.pod.Namespace) &&
		// A match without gateways has its VirtualService's (checked
		// already).
		(len(gateways) == 0 || appliesToMesh(gateways))
}

func stringMatch(m *networkingapi.StringMatch) (proxy.StringMatch, bool) {
	switch t := m.GetMatchType().(type) {
	case *networkingapi.StringMatch_Exact:
		return proxy.StringMatch{Kind: proxy.StringExact, Value: t.Exact}, true
	case *networkingapi.StringMatch_Prefix:
		return proxy.StringMatch{Kind: proxy.StringPrefix, Value: t.Prefix}, true
	case *networkingapi.StringMatch_Regex:
		return proxy.StringMatch{Kind: proxy.StringRegex, Value: t.Regex}, true
	}
	return proxy.StringMatch{Kind: proxy.StringPresent}, false
}

func routeMatch(m *networkingapi.HTTPMatchRequest) proxy.RouteMatch {
	var rm proxy.RouteMatch
	if m.Uri != nil {
		s, _ := stringMatch(m.Uri)
		kind := map[proxy.StringKind]proxy.PathKind{
			proxy.StringExact: proxy.PathExact, proxy.StringPrefix: proxy.PathPrefix, proxy.StringRegex: proxy.PathRegex,
		}[s.Kind]
		rm.Path = proxy.PathMatch{Kind: kind, Value: s.Value, IgnoreCase: m.IgnoreUriCase}
	}
	if m.Method != nil {
		if s, _ := stringMatch(m.Method); s.Kind == proxy.StringExact {
			rm.Methods = []string{strings.ToUpper(s.Value)}
		} else {
			rm.Headers = append(rm.Headers, proxy.HeaderMatch{Name: ":method", StringMatch: s})
		}
	}
	if m.Authority != nil {
		s, _ := stringMatch(m.Authority)
		rm.Headers = append(rm.Headers, proxy.HeaderMatch{Name: ":authority", StringMatch: s})
	}
	if m.Scheme != nil {
		s, _ := stringMatch(m.Scheme)
		rm.Headers = append(rm.Headers, proxy.HeaderMatch{Name: ":scheme", StringMatch: s})
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		s, _ := stringMatch(m.Headers[k])
		rm.Headers = append(rm.Headers, proxy.HeaderMatch{Name: strings.ToLower(k), StringMatch: s})
	}
	for _, k := range slices.Sorted(maps.Keys(m.WithoutHeaders)) {
		s, _ := stringMatch(m.WithoutHeaders[k])
		rm.Headers = append(rm.Headers, proxy.HeaderMatch{Name: strings.ToLower(k), StringMatch: s, Invert: true})
	}
	for _, k := range slices.Sorted(maps.Keys(m.QueryParams)) {
		s, _ := stringMatch(m.QueryParams[k])
		rm.QueryParams = append(rm.QueryParams, proxy.QueryMatch{Name: k, StringMatch: s})
	}
	return rm
}

func dur(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(d.Seconds)*time.Second + time.Duration(d.Nanos)
}

// httpAction is what an HTTPRoute does (its matches left out); ok is
// false when the route cannot be used.
func (b *builder) httpAction(vs *networkingv1.VirtualService, h *networkingapi.HTTPRoute, port uint32) (proxy.Route, bool) {
	where := fmt.Sprintf("VirtualService %s/%s", vs.Namespace, vs.Name)
	var r proxy.Route
	switch {
	case h.Delegate != nil:
		b.warnf("%s: delegate is not supported; route skipped", where)
		return r, false
	case h.Redirect != nil:
		rd := h.Redirect
		r.Redirect = &proxy.Redirect{Scheme: rd.Scheme, Host: rd.Authority, Code: int(rd.RedirectCode)}
		if rd.PrefixRewrite != "" {
			r.Redirect.PrefixRewrite = rd.PrefixRewrite
		} else {
			r.Redirect.Path = rd.Uri
		}
		if p, ok := rd.RedirectPort.(*networkingapi.HTTPRedirect_Port); ok {
			r.Redirect.Port = p.Port
		}
		if c := r.Redirect.Code; c != 0 && c != 301 && c != 302 && c != 303 && c != 307 && c != 308 {
			b.warnf("%s: redirect code %d is not supported; 301 used", where, c)
			r.Redirect.Code = 301
		}
	case h.DirectResponse != nil:
		d := &proxy.DirectResponse{Status: int(h.DirectResponse.Status)}
		if d.Status < 200 || d.Status > 599 {
			b.warnf("%s: direct response status %d is out of range; route skipped", where, d.Status)
			return r, false
		}
		switch body := h.DirectResponse.GetBody().GetSpecifier().(type) {
		case *networkingapi.HTTPBody_String_:
			d.Body = body.String_
		case *networkingapi.HTTPBody_Bytes:
			d.Body = string(body.Bytes)
		}
		r.DirectResponse = d
	case len(h.Route) > 0:
		for _, d := range h.Route {
			if d == nil || d.Destination == nil {
				continue
			}
			wc := proxy.WeightedCluster{Cluster: b.destination(vs.Namespace, d.Destination, port, false)}
			if d.Weight > 0 {
				wc.Weight = uint32(d.Weight)
			}
			if d.Headers != nil {
				wc.RequestHeaders = headerOps(d.Headers.Request)
				wc.ResponseHeaders = headerOps(d.Headers.Response)
			}
			if d.Weight == 0 && len(h.Route) > 1 {
				continue // weight 0 of several: never picked
			}
			r.Clusters = append(r.Clusters, wc)
		}
		if len(r.Clusters) == 0 {
			b.warnf("%s: route without destinations; skipped", where)
			return r, false
		}
	default:
		b.warnf("%s: route without route, redirect or directResponse; skipped", where)
		return r, false
	}
	if rw := h.Rewrite; rw != nil {
		r.Rewrite = &proxy.Rewrite{Prefix: rw.Uri, Host: rw.Authority}
		if rr := rw.UriRegexRewrite; rr != nil {
			r.Rewrite.Regex, r.Rewrite.Substitution = rr.Match, envoySubstitution(rr.Rewrite)
		}
	}
	r.Timeout = dur(h.Timeout)
	if len(r.Clusters) > 0 {
		r.Retry = retryPolicy(h.Retries)
	}
	r.Fault = fault(h.Fault)
	r.Mirrors = b.mirrors(vs.Namespace, h, port)
	if h.Headers != nil {
		r.RequestHeaders = headerOps(h.Headers.Request)
		r.ResponseHeaders = headerOps(h.Headers.Response)
	}
	r.CORS = cors(h.CorsPolicy)
	return r, true
}

// envoySubstitution turns RE2 substitution references (\1) into Go's
// (${1}).
func envoySubstitution(s string) string {
	return regexp.MustCompile(`\\(\d)`).ReplaceAllString(s, `$${$1}`)
}

// destination is the cluster of a VirtualService destination; port is
// the one the request came on, used when the destination names none and
// its service has several.
func (b *builder) destination(ns string, d *networkingapi.Destination, port uint32, tcp bool) string {
	host := b.x.resolveHost(d.Host, ns)
	svc := b.x.byHost[host]
	if d.Port != nil && d.Port.Number != 0 {
		port = d.Port.Number
	} else if svc != nil && len(svc.ports) == 1 {
		port = svc.ports[0].port
	}
	if svc == nil {
		b.warnf("destination %s is not a known service; requests to it answer 503", host)
		return b.missingCluster(port, d.Subset, host, tcp)
	}
	for i := range svc.ports {
		if svc.ports[i].port == port {
			return b.cluster(svc, &svc.ports[i], d.Subset)
		}
	}
	b.warnf("destination %s has no port %d; requests to it answer 503", host, port)
	return b.missingCluster(port, d.Subset, host, tcp)
}

func retryPolicy(r *networkingapi.HTTPRetry) *proxy.RetryPolicy {
	if r == nil {
		p := IstioDefaultRetry
		return &p
	}
	p := &proxy.RetryPolicy{Attempts: int(r.Attempts), PerTryTimeout: dur(r.PerTryTimeout)}
	if p.Attempts == 0 {
		return &proxy.RetryPolicy{}
	}
	on := r.RetryOn
	if on == "" {
		on = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
		p.StatusCodes = []int{503}
	}
	for f := range strings.SplitSeq(on, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); err == nil {
			if n >= 100 && n <= 599 && !slices.Contains(p.StatusCodes, n) {
				p.StatusCodes = append(p.StatusCodes, n)
			}
			continue
		}
		switch c := proxy.RetryOn(f); c {
		case proxy.RetryConnectFailure, proxy.RetryRefusedStream, proxy.RetryReset, proxy.Retry5xx,
			proxy.RetryGatewayError, proxy.RetryRetriable4xx, proxy.RetryStatusCodes:
			if !slices.Contains(p.On, c) {
				p.On = append(p.On, c)
			}
		}
	}
	if len(p.StatusCodes) > 0 && !slices.Contains(p.On, proxy.RetryStatusCodes) {
		p.On = append(p.On, proxy.RetryStatusCodes)
	}
	return p
}

func percent(p *networkingapi.Percent, deprecated int32) float64 {
	if p != nil {
		return min(max(p.Value, 0), 100)
	}
	if deprecated > 0 {
		return float64(min(deprecated, 100))
	}
	return 100
}

func fault(f *networkingapi.HTTPFaultInjection) *proxy.Fault {
	if f == nil {
		return nil
	}
	out := &proxy.Fault{}
	if d := f.Delay; d != nil {
		if fd, ok := d.HttpDelayType.(*networkingapi.HTTPFaultInjection_Delay_FixedDelay); ok {
			out.Delay = &proxy.FaultDelay{Fixed: dur(fd.FixedDelay), Percent: percent(d.Percentage, d.Percent)}
		}
	}
	if a := f.Abort; a != nil {
		ab := &proxy.FaultAbort{Percent: percent(a.Percentage, 0)}
		switch t := a.ErrorType.(type) {
		case *networkingapi.HTTPFaultInjection_Abort_HttpStatus:
			ab.Status = int(t.HttpStatus)
		case *networkingapi.HTTPFaultInjection_Abort_GrpcStatus:
			ab.GRPCStatus = t.GrpcStatus
			ab.Status = 200
		}
		if ab.Status >= 200 && ab.Status <= 599 {
			out.Abort = ab
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

func (b *builder) mirrors(ns string, h *networkingapi.HTTPRoute, port uint32) []proxy.Mirror {
	var out []proxy.Mirror
	if h.Mirror != nil {
		pct := 100.0
		if h.MirrorPercentage != nil {
			pct = percent(h.MirrorPercentage, 0)
		} else if h.MirrorPercent != nil {
			pct = float64(min(h.MirrorPercent.Value, 100))
		}
		out = append(out, proxy.Mirror{Cluster: b.destination(ns, h.Mirror, port, false), Percent: pct})
	}
	for _, m := range h.Mirrors {
		if m == nil || m.Destination == nil {
			continue
		}
		out = append(out, proxy.Mirror{Cluster: b.destination(ns, m.Destination, port, false), Percent: percent(m.Percentage, 0)})
	}
	return out
}

func headerOps(o *networkingapi.Headers_HeaderOperations) proxy.HeaderOps {
	var out proxy.HeaderOps
	if o == nil {
		return out
	}
	for _, k := range slices.Sorted(maps.Keys(o.Set)) {
		out.Set = append(out.Set, proxy.Header{Name: k, Value: o.Set[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(o.Add)) {
		out.Add = append(out.Add, proxy.Header{Name: k, Value: o.Add[k]})
	}
	out.Remove = append(out.Remove, o.Remove...)
	return out
}

func cors(c *networkingapi.CorsPolicy) *proxy.CORSPolicy {
	if c == nil {
		return nil
	}
	out := &proxy.CORSPolicy{
		AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders, ExposeHeaders: c.ExposeHeaders,
		MaxAge: dur(c.MaxAge), AllowCredentials: c.AllowCredentials.GetValue(),
	}
	for _, o := range c.AllowOrigin {
		out.AllowOrigins = append(out.AllowOrigins, proxy.StringMatch{Kind: proxy.StringExact, Value: o})
	}
	for _, o := range c.AllowOrigins {
		if s, ok := stringMatch(o); ok {
			out.AllowOrigins = append(out.AllowOrigins, s)
		}
	}
	return out
}

// tcpTarget is the cluster a TCP port forwards to: the first TCP route
// of the host's VirtualService whose match holds (its heaviest
// destination: a chain forwards to one cluster), else the service.
func (b *builder) tcpTarget(svc *service, sp *servicePort) string {
	vs := b.vsFor(svc.host)
	if vs != nil {
		for _, t := range vs.Spec.Tcp {
			if t == nil || len(t.Route) == 0 {
				continue
			}
			ok := len(t.Match) == 0
			for _, m := range t.Match {
				if m != nil && b.matchApplies(m.Port, m.SourceLabels, m.SourceNamespace, m.Gateways, vs.Namespace, sp.port) {
					ok = true
				}
			}
			if !ok {
				continue
			}
			best := t.Route[0]
			for _, d := range t.Route[1:] {
				if d != nil && d.Weight > best.GetWeight() {
					best = d
				}
			}
			if len(t.Route) > 1 {
				b.warnf("VirtualService %s/%s: TCP weights are not supported; all traffic goes to %s", vs.Namespace, vs.Name, best.GetDestination().GetHost())
			}
			if best.GetDestination() == nil {
				continue
			}
			return b.destination(vs.Namespace, best.Destination, sp.port, true)
		}
	}
	return b.cluster(svc, sp, "")
}
