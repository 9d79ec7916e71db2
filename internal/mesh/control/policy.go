package control

import (
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// trafficPolicy is a DestinationRule's policy for one cluster, merged
// field by field: top level, its port level, the subset's, the subset's
// port level (later wins).
type trafficPolicy struct {
	lb      *networkingapi.LoadBalancerSettings
	pool    *networkingapi.ConnectionPoolSettings
	outlier *networkingapi.OutlierDetection
	tls     *networkingapi.ClientTLSSettings
	// from names the DestinationRule, for messages.
	from string
}

func (p *trafficPolicy) merge(tp *networkingapi.TrafficPolicy, port uint32) {
	if tp == nil {
		return
	}
	p.mergePart(tp.LoadBalancer, tp.ConnectionPool, tp.OutlierDetection, tp.Tls)
	for _, pl := range tp.PortLevelSettings {
		if pl != nil && pl.Port != nil && pl.Port.Number == port {
			p.mergePart(pl.LoadBalancer, pl.ConnectionPool, pl.OutlierDetection, pl.Tls)
		}
	}
}

func (p *trafficPolicy) mergePart(lb *networkingapi.LoadBalancerSettings, pool *networkingapi.ConnectionPoolSettings,
	od *networkingapi.OutlierDetection, tls *networkingapi.ClientTLSSettings) {
	if lb != nil {
		p.lb = lb
	}
	if pool != nil {
		p.pool = pool
	}
	if od != nil {
		p.outlier = od
	}
	if tls != nil {
		p.tls = tls
	}
}

// policy is the DestinationRule policy of svc's port (and subset), the
// subset's labels, and whether the subset (when one is asked for) is
// defined. The oldest DestinationRule for the host is used.
func (b *builder) policy(svc *service, port uint32, subset string) (pol trafficPolicy, labels map[string]string, found bool) {
	drs := b.x.drs[svc.host]
	if len(drs) == 0 {
		for h, l := range b.x.drs {
			if len(h) > 1 && h[0] == '*' && hostMatches(h, svc.host) {
				drs = l
				break
			}
		}
	}
	if len(drs) == 0 {
		return pol, nil, subset == ""
	}
	dr := drs[0]
	pol.from = "DestinationRule " + dr.Namespace + "/" + dr.Name
	pol.merge(dr.Spec.TrafficPolicy, port)
	if subset == "" {
		return pol, nil, true
	}
	for _, s := range dr.Spec.Subsets {
		if s != nil && s.Name == subset {
			pol.merge(s.TrafficPolicy, port)
			return pol, s.Labels, true
		}
	}
	return pol, nil, false
}

// applyPolicy sets c's load balancing, pool, outlier detection and TLS
// from pol; without a TLS setting, mesh services get auto mTLS (unless
// the destination's PeerAuthentication disables it).
func (b *builder) applyPolicy(c *proxy.Cluster, svc *service, pol trafficPolicy) {
	if lb := pol.lb; lb != nil {
		switch t := lb.LbPolicy.(type) {
		case *networkingapi.LoadBalancerSettings_Simple:
			switch t.Simple {
			case networkingapi.LoadBalancerSettings_LEAST_CONN, networkingapi.LoadBalancerSettings_LEAST_REQUEST:
				c.LB = proxy.LBLeastRequest
			case networkingapi.LoadBalancerSettings_RANDOM:
				c.LB = proxy.LBRandom
			case networkingapi.LoadBalancerSettings_PASSTHROUGH:
				b.warnf("%s: loadBalancer PASSTHROUGH is not supported; round robin used", pol.from)
			}
		case *networkingapi.LoadBalancerSettings_ConsistentHash:
			if h := hashPolicy(t.ConsistentHash); h != nil {
				c.LB, c.Hash = proxy.LBConsistentHash, h
			}
		}
	}
	if p := pol.pool; p != nil {
		cp := &proxy.ConnectionPool{}
		if t := p.Tcp; t != nil {
			cp.MaxConnections = int(t.MaxConnections)
			c.ConnectTimeout = dur(t.ConnectTimeout)
			cp.IdleTimeout = dur(t.IdleTimeout)
		}
		if h := p.Http; h != nil {
			cp.MaxPendingRequests = int(h.Http1MaxPendingRequests)
			cp.MaxRequests = int(h.Http2MaxRequests)
			cp.MaxRequestsPerConnection = int(h.MaxRequestsPerConnection)
			cp.MaxRetries = int(h.MaxRetries)
			if d := dur(h.IdleTimeout); d > 0 {
				cp.IdleTimeout = d
			}
		}
		if *cp != (proxy.ConnectionPool{}) {
			c.Pool = cp
		}
	}
	if od := pol.outlier; od != nil {
		o := &proxy.OutlierDetection{
			Interval: dur(od.Interval), BaseEjectionTime: dur(od.BaseEjectionTime),
			MaxEjectionPercent: int(od.MaxEjectionPercent), MinHealthPercent: int(od.MinHealthPercent),
		}
		if v := od.Consecutive_5XxErrors; v != nil {
			o.Consecutive5xx = int(v.Value)
		} else if od.ConsecutiveErrors > 0 {
			o.ConsecutiveGatewayErrors = int(od.ConsecutiveErrors)
		} else if od.ConsecutiveGatewayErrors == nil {
			o.Consecutive5xx = 5
		}
		if v := od.ConsecutiveGatewayErrors; v != nil {
			o.ConsecutiveGatewayErrors = int(v.Value)
		}
		// Istio's defaults.
		if o.Interval == 0 {
			o.Interval = 10 * time.Second
		}
		if o.BaseEjectionTime == 0 {
			o.BaseEjectionTime = 30 * time.Second
		}
		if o.MaxEjectionPercent == 0 {
			o.MaxEjectionPercent = 10
		}
		c.Outlier = o
	}
	c.TLS = b.upstreamTLS(svc, pol)
}

func hashPolicy(h *networkingapi.LoadBalancerSettings_ConsistentHashLB) *proxy.HashPolicy {
	out := &proxy.HashPolicy{MinimumRingSize: int(h.MinimumRingSize)}
	if rh, ok := h.HashAlgorithm.(*networkingapi.LoadBalancerSettings_ConsistentHashLB_RingHash_); ok && rh.RingHash != nil && rh.RingHash.MinimumRingSize > 0 {
		out.MinimumRingSize = int(rh.RingHash.MinimumRingSize)
	}
	switch k := h.HashKey.(type) {
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		out.Header = k.HttpHeaderName
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		if k.HttpCookie == nil || k.HttpCookie.Name == "" {
			return nil
		}
		out.Cookie = &proxy.HashCookie{Name: k.HttpCookie.Name, Path: k.HttpCookie.Path, TTL: dur(k.HttpCookie.Ttl)}
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		out.SourceIP = k.UseSourceIp
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		out.Query = k.HttpQueryParameterName
	default:
		return nil
	}
	if out.Header == "" && out.Cookie == nil && !out.SourceIP && out.Query == "" {
		return nil
	}
	return out
}

func (b *builder) upstreamTLS(svc *service, pol trafficPolicy) *proxy.UpstreamTLS {
	t := pol.tls
	if t == nil {
		// Auto mTLS: mesh endpoints of in-mesh services, unless the
		// destination's namespace disables mTLS.
		if svc.external {
			return nil
		}
		if fromistioPeerAuthentication(svc.namespace, svc.selector, b.x.opts.RootNamespace, b.x.snap) == proxy.MTLSDisable {
			return nil
		}
		return &proxy.UpstreamTLS{Mode: proxy.TLSIstioMutual, Auto: true}
	}
	out := &proxy.UpstreamTLS{SNI: t.Sni, SubjectAltNames: t.SubjectAltNames, InsecureSkipVerify: t.InsecureSkipVerify.GetValue()}
	switch t.Mode {
	case networkingapi.ClientTLSSettings_DISABLE:
		return nil
	case networkingapi.ClientTLSSettings_ISTIO_MUTUAL:
		out.Mode = proxy.TLSIstioMutual
		out.SNI = ""
		return out
	case networkingapi.ClientTLSSettings_SIMPLE:
		out.Mode = proxy.TLSSimple
	case networkingapi.ClientTLSSettings_MUTUAL:
		b.warnf("%s: tls MUTUAL needs client certificates from files or Secrets, which are not supported; SIMPLE used", pol.from)
		out.Mode = proxy.TLSSimple
	}
	if t.CaCertificates != "" || t.CredentialName != "" || t.CaCertCredentialName != "" {
		b.warnf("%s: tls caCertificates/credentialName are not supported; the system roots verify", pol.from)
	}
	if out.SNI == "" && !svc.passthrough {
		out.SNI = svc.host
	}
	return out
}
