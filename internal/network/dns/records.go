package dns

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// rrset is what one owner name holds. An empty rrset is a name that exists
// without records of its own (an empty non-terminal such as
// <ns>.svc.<zone>). An rrset is never modified once in the index.
type rrset struct {
	addrs []netip.Addr // A and AAAA
	srv   []srvTarget
	cname string // canonical FQDN
	ptr   []string
}

type srvTarget struct {
	port   uint16
	target string // canonical FQDN
}

func (r *rrset) empty() bool {
	return len(r.addrs) == 0 && len(r.srv) == 0 && r.cname == "" && len(r.ptr) == 0
}

// canonical lower-cases a name and makes it fully qualified.
func canonical(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}

// serviceRecords are the names one Service contributes to zone (a
// canonical FQDN such as "cluster.local."), given the EndpointSlices
// labelled with its name. A nil svc contributes nothing.
func serviceRecords(zone string, svc *corev1.Service, slices []*discoveryv1.EndpointSlice) map[string]*rrset {
	if svc == nil {
		return nil
	}
	out := map[string]*rrset{}
	get := func(name string) *rrset {
		r := out[name]
		if r == nil {
			r = &rrset{}
			out[name] = r
		}
		return r
	}
	nsName := canonical(svc.Namespace + ".svc." + zone)
	base := canonical(svc.Name + "." + nsName)
	get(nsName)
	self := get(base)

	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if target := strings.TrimSuffix(svc.Spec.ExternalName, "."); target != "" {
			self.cname = canonical(target)
		}
		return out
	}

	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	eps := readyEndpoints(slices)

	// Endpoint names exist for every kind of Service with endpoints.
	for _, ep := range eps {
		name := canonical(ep.host + "." + base)
		r := get(name)
		r.addrs = appendAddr(r.addrs, ep.addr)
		if headless {
			if rev, err := dns.ReverseAddr(ep.addr.String()); err == nil {
				p := get(rev)
				p.ptr = appendName(p.ptr, name)
			}
		}
	}

	if headless {
		for _, ep := range eps {
			self.addrs = appendAddr(self.addrs, ep.addr)
			target := canonical(ep.host + "." + base)
			for _, p := range ep.ports {
				self.srv = append(self.srv, srvTarget{port: p.port, target: target})
				if p.name != "" {
					r := get(srvName(p.name, p.proto, base))
					r.srv = append(r.srv, srvTarget{port: p.port, target: target})
					get(protoName(p.proto, base))
				}
			}
		}
		return out
	}

	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		self.addrs = appendAddr(self.addrs, ip.Unmap())
		if rev, err := dns.ReverseAddr(ip.String()); err == nil {
			p := get(rev)
			p.ptr = appendName(p.ptr, base)
		}
	}
	if len(self.addrs) == 0 {
		return out // no address yet: the name exists, nothing else
	}
	for _, p := range svc.Spec.Ports {
		if p.Port <= 0 || p.Port > 65535 {
			continue
		}
		t := srvTarget{port: uint16(p.Port), target: base}
		self.srv = append(self.srv, t)
		if p.Name != "" {
			proto := protoLabel(p.Protocol)
			r := get(srvName(p.Name, proto, base))
			r.srv = append(r.srv, t)
			get(protoName(proto, base))
		}
	}
	return out
}

func srvName(port, proto, base string) string {
	return canonical("_" + port + "." + protoName(proto, base))
}

func protoName(proto, base string) string { return canonical("_" + proto + "." + base) }

func protoLabel(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// endpoint is one ready address of a Service with its DNS label and ports.
type endpoint struct {
	host  string
	addr  netip.Addr
	ports []endpointPort
}

type endpointPort struct {
	name, proto string
	port        uint16
}

// readyEndpoints lists the ready addresses of the slices (an unset
// condition counts as ready, as the API says), each once, in the order
// the slices give them. Slices are taken sorted by name so that answers
// do not depend on cache order.
func readyEndpoints(list []*discoveryv1.EndpointSlice) []endpoint {
	sorted := slices.Clone(list)
	slices.SortFunc(sorted, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	var out []endpoint
	seen := map[netip.Addr]int{}
	for _, s := range sorted {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var ports []endpointPort
		for _, p := range s.Ports {
			if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
				continue
			}
			ep := endpointPort{port: uint16(*p.Port), proto: "tcp"}
			if p.Name != nil {
				ep.name = *p.Name
			}
			if p.Protocol != nil {
				ep.proto = protoLabel(*p.Protocol)
			}
			ports = append(ports, ep)
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ip = ip.Unmap()
				if i, ok := seen[ip]; ok {
					out[i].ports = appendPorts(out[i].ports, ports)
					continue
				}
				host := dashed(ip)
				if e.Hostname != nil && len(validation.IsDNS1123Label(*e.Hostname)) == 0 {
					host = strings.ToLower(*e.Hostname)
				}
				seen[ip] = len(out)
				out = append(out, endpoint{host: host, addr: ip, ports: slices.Clone(ports)})
			}
		}
	}
	return out
}

func appendPorts(have, more []endpointPort) []endpointPort {
	for _, p := range more {
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	return have
}

// dashed is an address as a DNS label: 10-244-0-5, 2001-db8--1 (a
// trailing dash gets a 0, as CoreDNS does).
func dashed(ip netip.Addr) string {
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	s := strings.ReplaceAll(ip.String(), ":", "-")
	if strings.HasSuffix(s, "-") {
		s += "0"
	}
	return s
}

// undashed parses a pod label back into an address (1-2-3-4, 2001-db8--1).
func undashed(label string) (netip.Addr, bool) {
	var s string
	if strings.Count(label, "-") == 3 && !strings.Contains(label, "--") {
		s = strings.ReplaceAll(label, "-", ".")
	} else {
		s = strings.ReplaceAll(label, "-", ":")
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

func appendAddr(list []netip.Addr, ip netip.Addr) []netip.Addr {
	if slices.Contains(list, ip) {
		return list
	}
	return append(list, ip)
}

func appendName(list []string, name string) []string {
	if slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}
