package printers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestServiceCells(t *testing.T) {
	http := []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	web := map[string]string{"app": "web"}
	tests := []struct {
		name string
		spec corev1.ServiceSpec
		lb   []corev1.LoadBalancerIngress
		want []any // Type, Cluster-IP, External-IP, Port(s), Selector
	}{
		{
			name: "cluster IP",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
				Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}}, Selector: web},
			want: []any{"ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "app=web"},
		},
		{
			name: "dual stack shows the first family",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.11", "fd00::11"}, Ports: http},
			want: []any{"ClusterIP", "10.96.0.11", "<none>", "80/TCP", "<none>"},
		},
		{
			name: "headless",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}, Selector: web},
			want: []any{"ClusterIP", "None", "<none>", "<none>", "app=web"},
		},
		{
			name: "cluster IP with external IPs",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.12"}, ExternalIPs: []string{"192.0.2.1", "192.0.2.2"}, Ports: http},
			want: []any{"ClusterIP", "10.96.0.12", "192.0.2.1,192.0.2.2", "80/TCP", "<none>"},
		},
		{
			name: "node port",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.0.13"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}},
			want: []any{"NodePort", "10.96.0.13", "<none>", "80:30080/TCP", "<none>"},
		},
		{
			name: "load balancer pending",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.14"},
				Ports: []corev1.ServicePort{{Port: 443, NodePort: 31443, Protocol: corev1.ProtocolTCP}}},
			want: []any{"LoadBalancer", "10.96.0.14", "<pending>", "443:31443/TCP", "<none>"},
		},
		{
			name: "load balancer ready",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.15"}, Ports: http},
			lb:   []corev1.LoadBalancerIngress{{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.9"}},
			want: []any{"LoadBalancer", "10.96.0.15", "203.0.113.9,lb.example.com", "80/TCP", "<none>"},
		},
		{
			name: "load balancer with external IPs",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.16"}, ExternalIPs: []string{"192.0.2.7"}, Ports: http},
			lb:   []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}},
			want: []any{"LoadBalancer", "10.96.0.16", "203.0.113.10,192.0.2.7", "80/TCP", "<none>"},
		},
		{
			name: "external name",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
			want: []any{"ExternalName", "<none>", "db.example.com", "<none>", "<none>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", CreationTimestamp: created}, Spec: tt.spec}
			s.Status.LoadBalancer.Ingress = tt.lb
			want := []any{"svc", tt.want[0], tt.want[1], tt.want[2], tt.want[3], "5m", tt.want[4]}
			checkRow(t, cells(t, gk("", "Service"), s), want)
		})
	}
}

func TestIngressCells(t *testing.T) {
	rules := func(hosts ...string) []networkingv1.IngressRule {
		var r []networkingv1.IngressRule
		for _, h := range hosts {
			r = append(r, networkingv1.IngressRule{Host: h})
		}
		return r
	}
	tests := []struct {
		name string
		spec networkingv1.IngressSpec
		lb   []networkingv1.IngressLoadBalancerIngress
		want []any // Class, Hosts, Address, Ports
	}{
		{
			name: "catch-all",
			spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{}},
			want: []any{"<none>", "*", "", "80"},
		},
		{
			name: "hosts with TLS",
			spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: rules("a.example.com", "", "b.example.com"),
				TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
			lb:   []networkingv1.IngressLoadBalancerIngress{{Hostname: "lb.example.com"}, {IP: "203.0.113.4"}},
			want: []any{"nginx", "a.example.com,b.example.com", "203.0.113.4,lb.example.com", "80, 443"},
		},
		{
			name: "more than three hosts",
			spec: networkingv1.IngressSpec{Rules: rules("a", "b", "c", "d", "e")},
			want: []any{"<none>", "a,b,c + 2 more...", "", "80"},
		},
		{
			name: "more counts rules without hosts",
			spec: networkingv1.IngressSpec{Rules: rules("a", "b", "c", "")},
			want: []any{"<none>", "a,b,c + 1 more...", "", "80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "ing", CreationTimestamp: created}, Spec: tt.spec}
			in.Status.LoadBalancer.Ingress = tt.lb
			checkRow(t, cells(t, gk("networking.k8s.io", "Ingress"), in), append(append([]any{"ing"}, tt.want...), "5m"))
		})
	}
}

func TestOtherNetworkCells(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "n", CreationTimestamp: created}
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var a []corev1.EndpointAddress
		for _, ip := range ips {
			a = append(a, corev1.EndpointAddress{IP: ip})
		}
		return a
	}

	for _, tt := range []struct {
		name    string
		subsets []corev1.EndpointSubset
		want    string
	}{
		{"none", nil, "<none>"},
		{"ports", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "fd00::1"), Ports: []corev1.EndpointPort{{Port: 8080}}}}, "10.0.0.1:8080,[fd00::1]:8080"},
		{"headless without ports", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1")}}, "10.0.0.1"},
		{"more", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}},
			"10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."},
		{"only not ready", []corev1.EndpointSubset{{NotReadyAddresses: addrs("10.0.0.1"), Ports: []corev1.EndpointPort{{Port: 80}}}}, ""},
	} {
		t.Run("endpoints "+tt.name, func(t *testing.T) {
			checkRow(t, cells(t, gk("", "Endpoints"), &corev1.Endpoints{ObjectMeta: meta, Subsets: tt.subsets}), []any{"n", tt.want, "5m"})
		})
	}

	checkRow(t, cells(t, gk("discovery.k8s.io", "EndpointSlice"), &discoveryv1.EndpointSlice{
		ObjectMeta:  meta,
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}, {Name: ptr.To("metrics")}, {}, {Port: ptr.To[int32](9)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}}},
	}), []any{"n", "IPv4", "80,metrics,* + 1 more...", "10.0.0.1,10.0.0.2", "5m"})
	checkRow(t, cells(t, gk("discovery.k8s.io", "EndpointSlice"), &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv6}),
		[]any{"n", "IPv6", "<unset>", "<unset>", "5m"})

	checkRow(t, cells(t, gk("networking.k8s.io", "IngressClass"), &networkingv1.IngressClass{ObjectMeta: meta, Spec: networkingv1.IngressClassSpec{
		Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr.To("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"},
	}}), []any{"n", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "5m"})

	checkRow(t, cells(t, gk("networking.k8s.io", "NetworkPolicy"), &networkingv1.NetworkPolicy{ObjectMeta: meta}),
		[]any{"n", "<none>", "5m"})
}
