package control

import (
	"fmt"
	"testing"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// gatewayBenchSnapshot is n Services with 3 endpoints each, every one
// exposed through one Gateway by a VirtualService of its own.
func gatewayBenchSnapshot(n int) (*Snapshot, GatewayInput) {
	snap := &Snapshot{}
	in := GatewayInput{Gateways: []*networkingv1.Gateway{{
		ObjectMeta: metav1.ObjectMeta{Name: "ingress", Namespace: "istio-system"},
		Spec: networkingapi.Gateway{Selector: DefaultGatewayLabels, Servers: []*networkingapi.Server{
			{Port: &networkingapi.Port{Number: 80, Protocol: "HTTP"}, Hosts: []string{"*"}},
		}},
	}}}
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		snap.Services = append(snap.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-x", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		}
		for j := range 3 {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", (3*i+j)/250, (3*i+j)%250+1)}})
		}
		snap.EndpointSlices = append(snap.EndpointSlices, es)
		snap.VirtualServices = append(snap.VirtualServices, &networkingv1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: networkingapi.VirtualService{
				Hosts: []string{name + ".example.com"}, Gateways: []string{"istio-system/ingress"},
				Http: []*networkingapi.HTTPRoute{{
					Match: []*networkingapi.HTTPMatchRequest{{Uri: &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: "/api"}}}},
					Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: name}}},
				}},
			},
		})
	}
	return snap, in
}

// BenchmarkGatewayTranslate is the work the edge proxy does per sync
// with 500 exposed services: index, translate, merge into an Ingress
// configuration, and the proxy's validation of the result.
func BenchmarkGatewayTranslate(b *testing.B) {
	snap, in := gatewayBenchSnapshot(500)
	base := &proxy.Config{
		Listeners:   []proxy.Listener{{Name: "http", Address: ":80", RouteTable: "ingress"}},
		RouteTables: []proxy.RouteTable{{Name: "ingress"}},
	}
	b.Run("translate+merge", func(b *testing.B) {
		for b.Loop() {
			frag, _ := TranslateGateway(snap, in, MeshOptions{}, GatewayOptions{})
			if cfg, _ := MergeGateway(base, frag); len(cfg.Clusters) != 500 {
				b.Fatalf("%d clusters", len(cfg.Clusters))
			}
		}
	})
	b.Run("translate+merge+proxy-update", func(b *testing.B) {
		p := proxy.New(proxy.Options{})
		for b.Loop() {
			frag, _ := TranslateGateway(snap, in, MeshOptions{}, GatewayOptions{})
			cfg, _ := MergeGateway(base, frag)
			if err := p.Update(cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
