package printers

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func addNetworkPrinters(m map[schema.GroupKind]Printer) {
	m[schema.GroupKind{Kind: "Service"}] = typed(serviceColumns(), serviceCells)
	m[schema.GroupKind{Kind: "Endpoints"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
		ageColumn(),
	}, func(e *corev1.Endpoints, now time.Time) []any {
		return []any{e.Name, endpointsAddresses(e.Subsets), age(e.CreationTimestamp, now)}
	})
	slice := discoveryv1.EndpointSlice{}.SwaggerDoc()
	m[schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("AddressType", "string", slice["addressType"]),
		column("Ports", "string", slice["ports"]),
		column("Endpoints", "string", slice["endpoints"]),
		ageColumn(),
	}, endpointSliceCells)

	networking := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "networking.k8s.io", Kind: kind} }
	m[networking("Ingress")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
		column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
		column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
		column("Ports", "string", "Ports of TLS configurations that open"),
		ageColumn(),
	}, ingressCells)
	m[networking("IngressClass")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Controller", "string", "Controller that is responsible for handling this class"),
		column("Parameters", "string", "A reference to a resource with additional parameters"),
		ageColumn(),
	}, ingressClassCells)
	m[networking("NetworkPolicy")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Pod-Selector", "string", networkingv1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]),
		ageColumn(),
	}, func(p *networkingv1.NetworkPolicy, now time.Time) []any {
		return []any{p.Name, metav1.FormatLabelSelector(&p.Spec.PodSelector), age(p.CreationTimestamp, now)}
	})
}

func serviceColumns() []metav1.TableColumnDefinition {
	spec := corev1.ServiceSpec{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", "string", spec["type"]),
		column("Cluster-IP", "string", spec["clusterIP"]),
		column("External-IP", "string", spec["externalIPs"]),
		column("Port(s)", "string", spec["ports"]),
		ageColumn(),
		wide("Selector", "string", spec["selector"]),
	}
}

func serviceCells(s *corev1.Service, now time.Time) []any {
	clusterIP := "<none>"
	switch {
	case len(s.Spec.ClusterIPs) > 0:
		clusterIP = s.Spec.ClusterIPs[0]
	case s.Spec.ClusterIP != "":
		clusterIP = s.Spec.ClusterIP
	}
	ports := make([]string, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		ports[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.NodePort > 0 {
			ports[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		}
	}
	return []any{
		s.Name, string(s.Spec.Type), clusterIP, serviceExternalIP(s),
		orNone(strings.Join(ports, ",")),
		age(s.CreationTimestamp, now),
		labels.FormatLabels(s.Spec.Selector),
	}
}

// serviceExternalIP is the External-IP cell: spec.externalIPs, plus the
// load balancer's addresses for LoadBalancer services ("<pending>" until it
// has any), or the DNS name of an ExternalName service.
func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(s.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		ips := loadBalancerAddresses(s.Status.LoadBalancer.Ingress)
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return "<unknown>"
}

// loadBalancerAddresses returns the sorted distinct IPs (or, lacking one,
// host names) of a load balancer. Upstream clips these to 16 characters only
// outside -o wide; the server always prints wide, so they are never clipped.
func loadBalancerAddresses(ingress []corev1.LoadBalancerIngress) []string {
	addrs := make([]string, 0, len(ingress))
	for _, in := range ingress {
		if in.IP != "" {
			addrs = append(addrs, in.IP)
		} else {
			addrs = append(addrs, in.Hostname)
		}
	}
	return sortedUnique(addrs)
}

// endpointsAddresses lists "ip:port" for every ready address and port (bare
// IPs for subsets without ports), at most three.
func endpointsAddresses(subsets []corev1.EndpointSubset) string {
	if len(subsets) == 0 {
		return "<none>"
	}
	var list []string
	for _, ss := range subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				list = append(list, a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	return firstN(list, 3, ",")
}

func endpointSliceCells(s *discoveryv1.EndpointSlice, now time.Time) []any {
	ports := make([]string, 0, len(s.Ports))
	for _, p := range s.Ports {
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	var addrs []string
	for _, e := range s.Endpoints {
		addrs = append(addrs, e.Addresses...)
	}
	unset := func(s string) string {
		if s == "" {
			return "<unset>"
		}
		return s
	}
	return []any{
		s.Name, string(s.AddressType),
		unset(firstN(ports, 3, ",")), unset(firstN(addrs, 3, ",")),
		age(s.CreationTimestamp, now),
	}
}

func ingressCells(in *networkingv1.Ingress, now time.Time) []any {
	var addrs []string
	for _, lb := range in.Status.LoadBalancer.Ingress {
		if lb.IP != "" {
			addrs = append(addrs, lb.IP)
		} else {
			addrs = append(addrs, lb.Hostname)
		}
	}
	ports := "80"
	if len(in.Spec.TLS) != 0 {
		ports = "80, 443"
	}
	return []any{
		in.Name, stringOr(in.Spec.IngressClassName, "<none>"), ingressHosts(in.Spec.Rules),
		strings.Join(sortedUnique(addrs), ","), ports, age(in.CreationTimestamp, now),
	}
}

// ingressHosts lists the first three rule hosts, "*" when no rule names one.
// As upstream, the "+ N more" count is over all rules after the third,
// host or not.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	for _, r := range rules {
		if len(hosts) == max {
			return fmt.Sprintf("%s + %d more...", strings.Join(hosts, ","), len(rules)-max)
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	return strings.Join(hosts, ",")
}

func ingressClassCells(c *networkingv1.IngressClass, now time.Time) []any {
	params := "<none>"
	if p := c.Spec.Parameters; p != nil {
		params = p.Kind
		if p.APIGroup != nil {
			params += "." + *p.APIGroup
		}
		params += "/" + p.Name
	}
	return []any{c.Name, c.Spec.Controller, params, age(c.CreationTimestamp, now)}
}
