package istio

import (
	"net/netip"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The rules follow istio/istio pkg/config/validation
// (ValidateDestinationRule, ValidateGateway, ValidateServiceEntry,
// ValidateSidecar; VirtualService's are in validate_virtualservice.go): the
// ones that catch real mistakes, with the field path named.

func validateDestinationRule(dr *networking.DestinationRule) field.ErrorList {
	p := specPath
	errs := validateHost(dr.Host, p.Child("host"), false)
	errs = append(errs, validateTrafficPolicy(dr.TrafficPolicy, p.Child("trafficPolicy"))...)
	names := map[string]int{}
	for i, s := range dr.Subsets {
		sp := p.Child("subsets").Index(i)
		if s == nil {
			errs = append(errs, field.Required(sp, "subset may not be null"))
			continue
		}
		switch msgs := validation.IsDNS1123Label(s.Name); {
		case s.Name == "":
			errs = append(errs, field.Required(sp.Child("name"), "subset name cannot be empty"))
		case len(msgs) > 0:
			errs = append(errs, field.Invalid(sp.Child("name"), s.Name, "subset name is invalid: "+msgs[0]))
		}
		if j, dup := names[s.Name]; dup && s.Name != "" {
			errs = append(errs, field.Duplicate(sp.Child("name"), s.Name+" (also subsets["+strconv.Itoa(j)+"])"))
		}
		names[s.Name] = i
		errs = append(errs, validateLabels(s.Labels, sp.Child("labels"))...)
		errs = append(errs, validateTrafficPolicy(s.TrafficPolicy, sp.Child("trafficPolicy"))...)
	}
	for i, ns := range dr.ExportTo {
		errs = append(errs, validateExportTo(ns, p.Child("exportTo").Index(i))...)
	}
	return errs
}

func validateTrafficPolicy(tp *networking.TrafficPolicy, p *field.Path) field.ErrorList {
	if tp == nil {
		return nil
	}
	errs := validateConnectionPool(tp.ConnectionPool, p.Child("connectionPool"))
	errs = append(errs, validateOutlierDetection(tp.OutlierDetection, p.Child("outlierDetection"))...)
	for i, pl := range tp.PortLevelSettings {
		pp := p.Child("portLevelSettings").Index(i)
		if pl == nil {
			errs = append(errs, field.Required(pp, "port traffic policy may not be null"))
			continue
		}
		if pl.Port == nil {
			errs = append(errs, field.Required(pp.Child("port"), "port must be set"))
		} else {
			errs = append(errs, validatePort(pl.Port.Number, pp.Child("port", "number"))...)
		}
		errs = append(errs, validateConnectionPool(pl.ConnectionPool, pp.Child("connectionPool"))...)
		errs = append(errs, validateOutlierDetection(pl.OutlierDetection, pp.Child("outlierDetection"))...)
	}
	return errs
}

func validateConnectionPool(cp *networking.ConnectionPoolSettings, p *field.Path) field.ErrorList {
	if cp == nil {
		return nil
	}
	if cp.Http == nil && cp.Tcp == nil {
		return field.ErrorList{field.Required(p, "connection pool must have at least one field (tcp or http)")}
	}
	var errs field.ErrorList
	nonNegative := func(v int32, fp *field.Path) {
		if v < 0 {
			errs = append(errs, field.Invalid(fp, v, "must be non-negative"))
		}
	}
	if h := cp.Http; h != nil {
		hp := p.Child("http")
		nonNegative(h.Http1MaxPendingRequests, hp.Child("http1MaxPendingRequests"))
		nonNegative(h.Http2MaxRequests, hp.Child("http2MaxRequests"))
		nonNegative(h.MaxRequestsPerConnection, hp.Child("maxRequestsPerConnection"))
		nonNegative(h.MaxRetries, hp.Child("maxRetries"))
		nonNegative(h.MaxConcurrentStreams, hp.Child("maxConcurrentStreams"))
		errs = append(errs, validateDuration(h.IdleTimeout, hp.Child("idleTimeout"))...)
		if h.H2UpgradePolicy == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE && h.UseClientProtocol {
			errs = append(errs, field.Invalid(hp.Child("useClientProtocol"), true, "use client protocol must not be true when h2UpgradePolicy is UPGRADE"))
		}
	}
	if t := cp.Tcp; t != nil {
		tp := p.Child("tcp")
		nonNegative(t.MaxConnections, tp.Child("maxConnections"))
		errs = append(errs, validateDuration(t.ConnectTimeout, tp.Child("connectTimeout"))...)
		errs = append(errs, validateDuration(t.MaxConnectionDuration, tp.Child("maxConnectionDuration"))...)
		if t.IdleTimeout != nil && t.IdleTimeout.AsDuration() != 0 {
			errs = append(errs, validateDuration(t.IdleTimeout, tp.Child("idleTimeout"))...)
		}
		if ka := t.TcpKeepalive; ka != nil {
			errs = append(errs, validateDuration(ka.Time, tp.Child("tcpKeepalive", "time"))...)
			errs = append(errs, validateDuration(ka.Interval, tp.Child("tcpKeepalive", "interval"))...)
		}
	}
	return errs
}

func validateOutlierDetection(o *networking.OutlierDetection, p *field.Path) field.ErrorList {
	if o == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, validateDuration(o.BaseEjectionTime, p.Child("baseEjectionTime"))...)
	errs = append(errs, validateDuration(o.Interval, p.Child("interval"))...)
	errs = append(errs, validatePercent(o.MaxEjectionPercent, p.Child("maxEjectionPercent"))...)
	errs = append(errs, validatePercent(o.MinHealthPercent, p.Child("minHealthPercent"))...)
	if o.ConsecutiveErrors < 0 {
		errs = append(errs, field.Invalid(p.Child("consecutiveErrors"), o.ConsecutiveErrors, "must be non-negative"))
	}
	if !o.SplitExternalLocalOriginErrors && o.ConsecutiveLocalOriginFailures.GetValue() > 0 {
		errs = append(errs, field.Invalid(p.Child("consecutiveLocalOriginFailures"), o.ConsecutiveLocalOriginFailures.GetValue(),
			"consecutive local origin failures is specified, but splitExternalLocalOriginErrors is false"))
	}
	return errs
}

func validateGateway(gw *networking.Gateway) field.ErrorList {
	p := specPath
	var errs field.ErrorList
	if len(gw.Servers) == 0 {
		errs = append(errs, field.Required(p.Child("servers"), "gateway must have at least one server"))
	}
	portNames := map[string]bool{}
	for i, s := range gw.Servers {
		sp := p.Child("servers").Index(i)
		if s == nil {
			errs = append(errs, field.Required(sp, "server may not be null"))
			continue
		}
		if len(s.Hosts) == 0 {
			errs = append(errs, field.Required(sp.Child("hosts"), "server config must contain at least one host"))
		}
		for j, h := range s.Hosts {
			hp := sp.Child("hosts").Index(j)
			// A host is [namespace/]dnsName, namespace being "*", "." or a name.
			ns, name, ok := strings.Cut(h, "/")
			if !ok {
				name = h
			} else if ns != "*" && ns != "." && ns != "~" && len(validation.IsDNS1123Label(ns)) > 0 {
				errs = append(errs, field.Invalid(hp, h, "namespace part must be *, . or a namespace name"))
			}
			errs = append(errs, validateHost(name, hp, true)...)
		}
		if s.Port == nil {
			errs = append(errs, field.Required(sp.Child("port"), "server must have a port"))
			continue
		}
		errs = append(errs, validatePort(s.Port.Number, sp.Child("port", "number"))...)
		if s.Port.Protocol == "" {
			errs = append(errs, field.Required(sp.Child("port", "protocol"), "protocol must be set"))
		}
		if s.Port.Name != "" {
			if portNames[s.Port.Name] {
				errs = append(errs, field.Duplicate(sp.Child("port", "name"), s.Port.Name))
			}
			portNames[s.Port.Name] = true
		}
		proto := strings.ToUpper(s.Port.Protocol)
		tlsProto := proto == "HTTPS" || proto == "TLS"
		if tlsProto && s.Tls == nil {
			errs = append(errs, field.Required(sp.Child("tls"), "server must have TLS settings for HTTPS/TLS protocols"))
		}
		if s.Tls != nil && !tlsProto && !(proto == "HTTP" && s.Tls.HttpsRedirect) {
			errs = append(errs, field.Forbidden(sp.Child("tls"), "server cannot have TLS settings for non HTTPS/TLS ports"))
		}
	}
	errs = append(errs, validateLabels(gw.Selector, p.Child("selector"))...)
	return errs
}

func validateServiceEntry(se *networking.ServiceEntry) field.ErrorList {
	p := specPath
	var errs field.ErrorList
	if se.WorkloadSelector != nil && len(se.Endpoints) > 0 {
		errs = append(errs, field.Forbidden(p.Child("endpoints"), "only one of workloadSelector or endpoints is allowed in service entry"))
	}
	if len(se.Hosts) == 0 {
		errs = append(errs, field.Required(p.Child("hosts"), "service entry must have at least one host"))
	}
	for i, h := range se.Hosts {
		errs = append(errs, validateHost(h, p.Child("hosts").Index(i), false)...)
	}
	for i, a := range se.Addresses {
		if _, err := netip.ParsePrefix(a); err == nil {
			if se.Resolution != networking.ServiceEntry_NONE && se.Resolution != networking.ServiceEntry_STATIC {
				errs = append(errs, field.Invalid(p.Child("addresses").Index(i), a, "CIDR addresses are allowed only for NONE/STATIC resolution types"))
			}
			continue
		}
		if _, err := netip.ParseAddr(a); err != nil {
			errs = append(errs, field.Invalid(p.Child("addresses").Index(i), a, "must be an IP address or CIDR"))
		}
	}
	ports := map[string]bool{}
	numbers := map[uint32]bool{}
	for i, port := range se.Ports {
		pp := p.Child("ports").Index(i)
		if port == nil {
			errs = append(errs, field.Required(pp, "port may not be null"))
			continue
		}
		if port.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), "port name must be set"))
		} else if ports[port.Name] {
			errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
		}
		ports[port.Name] = true
		errs = append(errs, validatePort(port.Number, pp.Child("number"))...)
		if numbers[port.Number] {
			errs = append(errs, field.Duplicate(pp.Child("number"), port.Number))
		}
		numbers[port.Number] = true
		if port.TargetPort != 0 {
			errs = append(errs, validatePort(port.TargetPort, pp.Child("targetPort"))...)
		}
	}
	switch se.Resolution {
	case networking.ServiceEntry_NONE:
		if len(se.Endpoints) > 0 {
			errs = append(errs, field.Forbidden(p.Child("endpoints"), "no endpoints should be provided for resolution type NONE"))
		}
	case networking.ServiceEntry_STATIC:
		for i, e := range se.Endpoints {
			ep := p.Child("endpoints").Index(i)
			if e == nil {
				errs = append(errs, field.Required(ep, "endpoint may not be null"))
				continue
			}
			if _, err := netip.ParseAddr(e.Address); err != nil && !strings.HasPrefix(e.Address, "unix://") {
				errs = append(errs, field.Invalid(ep.Child("address"), e.Address, "endpoint address is not a valid IP address"))
			}
			errs = append(errs, validateEndpointPorts(e, ports, ep)...)
		}
	case networking.ServiceEntry_DNS, networking.ServiceEntry_DNS_ROUND_ROBIN:
		if len(se.Endpoints) == 0 {
			for i, h := range se.Hosts {
				if strings.HasPrefix(h, "*") {
					errs = append(errs, field.Invalid(p.Child("hosts").Index(i), h, "hosts must be FQDN if no endpoints are provided for resolution mode "+se.Resolution.String()))
				}
			}
		}
		if se.Resolution == networking.ServiceEntry_DNS_ROUND_ROBIN && len(se.Endpoints) > 1 {
			errs = append(errs, field.TooMany(p.Child("endpoints"), len(se.Endpoints), 1))
		}
		for i, e := range se.Endpoints {
			ep := p.Child("endpoints").Index(i)
			if e == nil {
				errs = append(errs, field.Required(ep, "endpoint may not be null"))
				continue
			}
			if _, err := netip.ParseAddr(e.Address); err != nil {
				errs = append(errs, validateHost(e.Address, ep.Child("address"), false)...)
			}
			errs = append(errs, validateEndpointPorts(e, ports, ep)...)
		}
	case networking.ServiceEntry_DYNAMIC_DNS:
		if len(se.Endpoints) > 0 {
			errs = append(errs, field.Forbidden(p.Child("endpoints"), "endpoints cannot be set for resolution type DYNAMIC_DNS"))
		}
		if len(se.Addresses) > 0 {
			errs = append(errs, field.Forbidden(p.Child("addresses"), "addresses cannot be set for resolution type DYNAMIC_DNS"))
		}
	}
	for i, ns := range se.ExportTo {
		errs = append(errs, validateExportTo(ns, p.Child("exportTo").Index(i))...)
	}
	return errs
}

func validateEndpointPorts(e *networking.WorkloadEntry, servicePorts map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sets.List(sets.KeySet(e.Ports)) {
		if !servicePorts[name] {
			errs = append(errs, field.Invalid(p.Child("ports").Key(name), name, "endpoint port is not defined by the service entry"))
		}
		errs = append(errs, validatePort(e.Ports[name], p.Child("ports").Key(name))...)
	}
	return append(errs, validateLabels(e.Labels, p.Child("labels"))...)
}

func validateSidecar(sc *networking.Sidecar) field.ErrorList {
	p := specPath
	var errs field.ErrorList
	if sc.WorkloadSelector != nil {
		errs = append(errs, validateLabels(sc.WorkloadSelector.Labels, p.Child("workloadSelector", "labels"))...)
	}
	for i, in := range sc.Ingress {
		ip := p.Child("ingress").Index(i)
		if in == nil {
			errs = append(errs, field.Required(ip, "ingress listener may not be null"))
			continue
		}
		if in.Port == nil {
			errs = append(errs, field.Required(ip.Child("port"), "sidecar ingress listener must have a port"))
		} else {
			errs = append(errs, validatePort(in.Port.Number, ip.Child("port", "number"))...)
		}
		errs = append(errs, validateConnectionPool(in.ConnectionPool, ip.Child("connectionPool"))...)
	}
	for i, eg := range sc.Egress {
		ep := p.Child("egress").Index(i)
		if eg == nil {
			errs = append(errs, field.Required(ep, "egress listener may not be null"))
			continue
		}
		if len(eg.Hosts) == 0 {
			errs = append(errs, field.Required(ep.Child("hosts"), "sidecar egress listener must contain at least one host"))
		}
		for j, h := range eg.Hosts {
			hp := ep.Child("hosts").Index(j)
			ns, name, ok := strings.Cut(h, "/")
			if !ok {
				errs = append(errs, field.Invalid(hp, h, "egress host must be of the form namespace/dnsName"))
				continue
			}
			if ns != "*" && ns != "." && ns != "~" && len(validation.IsDNS1123Label(ns)) > 0 {
				errs = append(errs, field.Invalid(hp, h, "namespace part must be *, ., ~ or a namespace name"))
			}
			errs = append(errs, validateHost(name, hp, true)...)
		}
		if eg.Port != nil {
			errs = append(errs, validatePort(eg.Port.Number, ep.Child("port", "number"))...)
		}
	}
	errs = append(errs, validateConnectionPool(sc.InboundConnectionPool, p.Child("inboundConnectionPool"))...)
	return errs
}
