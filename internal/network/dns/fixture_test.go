package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The fixed object set the table tests query.

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
	if clusterIP != "" && clusterIP != corev1.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{clusterIP}
	}
	return svc
}

func port(name string, proto corev1.Protocol, n int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: n}
}

type ep struct {
	addr, host string
	notReady   bool
}

func slice(ns, svc, name string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: at,
		Ports:       ports,
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!e.notReady)}}
		if e.host != "" {
			x.Hostname = ptr.To(e.host)
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func slicePort(name string, proto corev1.Protocol, n int32) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Protocol: ptr.To(proto), Port: ptr.To(n)}
	if name != "" {
		p.Name = ptr.To(name)
	}
	return p
}

type fixtureService struct {
	svc    *corev1.Service
	slices []*discoveryv1.EndpointSlice
}

func fixture() []fixtureService {
	dual := service("default", "dual", "10.96.0.21", port("http", corev1.ProtocolTCP, 80))
	dual.Spec.ClusterIPs = []string{"10.96.0.21", "fd00::21"}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.org"}}
	alias := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "alias"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "Hello.default.svc.cluster.local."}}
	nowhere := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nowhere"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "missing.default.svc.cluster.local"}}
	return []fixtureService{
		{svc: service("default", "hello", "10.96.0.20", port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53)),
			slices: []*discoveryv1.EndpointSlice{slice("default", "hello", "hello-a", discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{slicePort("http", corev1.ProtocolTCP, 8080)}, ep{addr: "10.244.0.9"})}},
		{svc: dual},
		{svc: service("default", "nginx", corev1.ClusterIPNone, port("web", corev1.ProtocolTCP, 80)),
			slices: []*discoveryv1.EndpointSlice{slice("default", "nginx", "nginx-a", discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{slicePort("web", corev1.ProtocolTCP, 80)},
				ep{addr: "10.244.0.5", host: "web-0"}, ep{addr: "10.244.0.6", host: "web-1"}, ep{addr: "10.244.0.7", host: "web-2", notReady: true})}},
		{svc: service("default", "anon", corev1.ClusterIPNone),
			slices: []*discoveryv1.EndpointSlice{
				slice("default", "anon", "anon-4", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{slicePort("", corev1.ProtocolTCP, 9000)}, ep{addr: "10.244.0.8"}),
				slice("default", "anon", "anon-6", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{slicePort("", corev1.ProtocolTCP, 9000)}, ep{addr: "fd00:10:244::8"}),
			}},
		{svc: service("default", "empty", corev1.ClusterIPNone, port("web", corev1.ProtocolTCP, 80))},
		{svc: service("default", "pending", "", port("web", corev1.ProtocolTCP, 80))},
		{svc: ext},
		{svc: alias},
		{svc: nowhere},
		{svc: service("other", "hello", "10.96.0.30", port("http", corev1.ProtocolTCP, 80))},
	}
}

// big is a headless Service with n ready endpoints, for truncation.
func big(n int) fixtureService {
	var eps []ep
	for i := range n {
		eps = append(eps, ep{addr: fmt.Sprintf("10.244.%d.%d", 1+i/250, 1+i%250)})
	}
	return fixtureService{
		svc:    service("default", "big", corev1.ClusterIPNone),
		slices: []*discoveryv1.EndpointSlice{slice("default", "big", "big-a", discoveryv1.AddressTypeIPv4, nil, eps...)},
	}
}

// fakeResolver answers names outside the zone from a map of name/type
// to records; other names get NXDOMAIN.
type fakeResolver map[string][]dns.RR

func (f fakeResolver) resolve(_ context.Context, q dns.Question, _ bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	rrs, ok := f[strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Qtype]]
	if !ok {
		m.Rcode = dns.RcodeNameError
		return m, nil
	}
	m.Answer = rrs
	return m, nil
}

func testHandler(t testing.TB, fwd resolver, extra ...fixtureService) *handler {
	t.Helper()
	ix := newIndex()
	for _, f := range append(fixture(), extra...) {
		ix.set(f.svc.Namespace+"/"+f.svc.Name, serviceRecords("cluster.local.", f.svc, f.slices))
	}
	return &handler{zone: "cluster.local.", ttl: 5, ix: ix, fwd: fwd, loopID: []byte("loop-id!")}
}

// rrStrings renders records as "name TYPE data", sorted (answers come in
// a rotating order).
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, fmt.Sprintf("%s %s %s", h.Name, dns.TypeToString[h.Rrtype], data))
	}
	slices.Sort(out)
	return out
}
