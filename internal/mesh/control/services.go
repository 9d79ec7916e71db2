package control

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// portProtocol classifies a port as HTTP (and gRPC, which also means
// HTTP/2 to the endpoints) from its name and appProtocol; see the package
// doc for the rule.
func portProtocol(name string, appProtocol *string) (http, grpc bool) {
	if appProtocol != nil {
		switch strings.ToLower(*appProtocol) {
		case "http", "http2":
			return true, strings.ToLower(*appProtocol) == "http2"
		case "grpc", "grpc-web", "h2c", "kubernetes.io/h2c":
			return true, true
		}
		return false, false
	}
	return protocolName(name)
}

// protocolName is Istio's port-name convention: PROTOCOL or
// PROTOCOL-suffix.
func protocolName(name string) (http, grpc bool) {
	proto, _, _ := strings.Cut(strings.ToLower(name), "-")
	if strings.HasPrefix(strings.ToLower(name), "grpc-web") {
		return true, true
	}
	switch proto {
	case "http":
		return true, false
	case "http2", "grpc":
		return true, true
	}
	return false, false
}

func (x *Index) addService(s *corev1.Service, slices []*discoveryv1.EndpointSlice) {
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		// An ExternalName Service is a DNS alias; its traffic goes
		// wherever the name resolves (passthrough).
		return
	}
	host := s.Name + "." + s.Namespace + ".svc." + x.opts.ClusterDomain
	svc := &service{
		host: host, namespace: s.Namespace, name: s.Name,
		selector: s.Spec.Selector, created: s.CreationTimestamp,
	}
	svc.headless = s.Spec.ClusterIP == corev1.ClusterIPNone
	svc.passthrough = svc.headless
	if !svc.headless {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if net.ParseIP(ip) != nil {
				svc.addresses = append(svc.addresses, ip)
			}
		}
	}
	for _, p := range s.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP || p.Port <= 0 || p.Port > 65535 || svc.hasPort(uint32(p.Port)) {
			continue
		}
		sp := servicePort{name: p.Name, port: uint32(p.Port), targetPort: p.TargetPort.String()}
		if p.TargetPort.IntValue() == 0 && p.TargetPort.StrVal == "" {
			sp.targetPort = strconv.Itoa(int(p.Port))
		}
		sp.http, sp.grpc = portProtocol(p.Name, p.AppProtocol)
		sp.endpoints = x.sliceEndpoints(slices, p.Name)
		svc.ports = append(svc.ports, sp)
	}
	if len(svc.ports) == 0 {
		return
	}
	x.services = append(x.services, svc)
	x.byHost[host] = svc
}

// sliceEndpoints are the ready endpoints of the EndpointSlices' port
// named portName.
func (x *Index) sliceEndpoints(ess []*discoveryv1.EndpointSlice, portName string) []endpoint {
	var out []endpoint
	seen := map[string]bool{}
	for _, es := range ess {
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		var port int32 = -1
		for _, p := range es.Ports {
			if p.Name != nil && *p.Name == portName && p.Port != nil &&
				(p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				port = *p.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			var pod *corev1.Pod
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				ns := ep.TargetRef.Namespace
				if ns == "" {
					ns = es.Namespace
				}
				pod = x.podsByKey[ns+"/"+ep.TargetRef.Name]
			}
			for _, a := range ep.Addresses {
				addr := net.JoinHostPort(a, strconv.Itoa(int(port)))
				if seen[addr] {
					continue
				}
				seen[addr] = true
				e := endpoint{address: addr}
				if pod != nil {
					e.mesh = podMesh(pod)
					e.labels = pod.Labels
				}
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return strings.Compare(a.address, b.address) })
	return out
}

func (x *Index) addServiceEntry(se *networkingv1.ServiceEntry) {
	spec := &se.Spec
	if len(spec.Hosts) == 0 || len(spec.Ports) == 0 {
		x.errs = append(x.errs, fmt.Sprintf("ServiceEntry %s/%s: no hosts or no ports, ignored", se.Namespace, se.Name))
		return
	}
	if spec.WorkloadSelector != nil {
		x.errs = append(x.errs, fmt.Sprintf("ServiceEntry %s/%s: workloadSelector is not supported, ignored", se.Namespace, se.Name))
		return
	}
	var addrs []string
	for _, a := range spec.Addresses {
		if ip := net.ParseIP(a); ip != nil {
			addrs = append(addrs, a)
		} else if _, _, err := net.ParseCIDR(a); err == nil {
			addrs = append(addrs, a)
		} else {
			x.errs = append(x.errs, fmt.Sprintf("ServiceEntry %s/%s: bad address %q, ignored", se.Namespace, se.Name, a))
		}
	}
	for _, h := range spec.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if _, dup := x.byHost[h]; dup || h == "" {
			// A Service (or an older entry) already owns the host.
			continue
		}
		svc := &service{
			host: h, namespace: se.Namespace, addresses: addrs,
			external: spec.Location == networkingapi.ServiceEntry_MESH_EXTERNAL,
			created:  se.CreationTimestamp, seName: se.Namespace + "/" + se.Name,
		}
		svc.passthrough = spec.Resolution == networkingapi.ServiceEntry_NONE || strings.HasPrefix(h, "*")
		for _, p := range spec.Ports {
			if p == nil || p.Number == 0 || p.Number > 65535 || svc.hasPort(p.Number) {
				continue
			}
			sp := servicePort{name: p.Name, port: p.Number}
			switch strings.ToUpper(p.Protocol) {
			case "HTTP":
				sp.http = true
			case "HTTP2", "GRPC", "GRPC-WEB":
				sp.http, sp.grpc = true, true
			}
			target := p.Number
			if p.TargetPort != 0 {
				target = p.TargetPort
			}
			switch spec.Resolution {
			case networkingapi.ServiceEntry_STATIC, networkingapi.ServiceEntry_DNS, networkingapi.ServiceEntry_DNS_ROUND_ROBIN:
				sp.endpoints = seEndpoints(spec, h, p.Name, target)
			}
			svc.ports = append(svc.ports, sp)
		}
		if len(svc.ports) == 0 {
			continue
		}
		x.services = append(x.services, svc)
		x.byHost[h] = svc
	}
}

// seEndpoints are a ServiceEntry's endpoints on one port: its workload
// entries, or (resolution DNS without endpoints) the host itself.
func seEndpoints(spec *networkingapi.ServiceEntry, host, portName string, target uint32) []endpoint {
	if len(spec.Endpoints) == 0 {
		if spec.Resolution == networkingapi.ServiceEntry_STATIC {
			return nil
		}
		return []endpoint{{address: net.JoinHostPort(host, strconv.Itoa(int(target)))}}
	}
	var out []endpoint
	for _, we := range spec.Endpoints {
		if we == nil || we.Address == "" || strings.HasPrefix(we.Address, "unix://") {
			continue
		}
		port := target
		if p, ok := we.Ports[portName]; ok && p != 0 {
			port = p
		}
		out = append(out, endpoint{address: net.JoinHostPort(we.Address, strconv.Itoa(int(port))), labels: we.Labels})
	}
	return out
}

func (s *service) hasPort(port uint32) bool {
	for _, p := range s.ports {
		if p.port == port {
			return true
		}
	}
	return false
}
