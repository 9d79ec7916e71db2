package control

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// benchSnapshot is a cluster of services services with 5 endpoints
// each (every tenth with a VirtualService and a DestinationRule with two
// subsets) and proxies injected pods on this node.
func benchSnapshot(services, proxies int) (*Snapshot, []*corev1.Pod) {
	snap := &Snapshot{}
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		snap.Services = append(snap.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "tcp", Port: 9000}}},
		})
		es := endpointSlice(name + "-1")
		es.Labels[discoveryv1.LabelServiceName] = name
		tcp, tport := "tcp", int32(9000)
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: &tcp, Port: &tport})
		for j := range 5 {
			pod := fmt.Sprintf("%s-%d", name, j)
			snap.Pods = append(snap.Pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: "default",
				Labels: map[string]string{"app": name, "version": fmt.Sprintf("v%d", j%2)}, Annotations: map[string]string{meshconfig.StatusAnnotation: "{}"}}})
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", i/50, (i%50)*5+j+1)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: "default"}})
		}
		snap.EndpointSlices = append(snap.EndpointSlices, es)
		if i%10 == 0 {
			snap.DestinationRules = append(snap.DestinationRules, &networkingv1.DestinationRule{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Spec: networkingapi.DestinationRule{Host: name, Subsets: []*networkingapi.Subset{
					{Name: "v0", Labels: map[string]string{"version": "v0"}}, {Name: "v1", Labels: map[string]string{"version": "v1"}}}},
			})
			snap.VirtualServices = append(snap.VirtualServices, &networkingv1.VirtualService{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Spec: networkingapi.VirtualService{Hosts: []string{name}, Http: []*networkingapi.HTTPRoute{
					{Match: []*networkingapi.HTTPMatchRequest{{Headers: map[string]*networkingapi.StringMatch{
						"end-user": {MatchType: &networkingapi.StringMatch_Exact{Exact: "jason"}}}}},
						Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: name, Subset: "v1"}}}},
					{Route: []*networkingapi.HTTPRouteDestination{
						{Destination: &networkingapi.Destination{Host: name, Subset: "v0"}, Weight: 90},
						{Destination: &networkingapi.Destination{Host: name, Subset: "v1"}, Weight: 10}}},
				}},
			})
		}
	}
	var local []*corev1.Pod
	for i := range proxies {
		p := meshPod(fmt.Sprintf("proxy-%d", i), "node-a", fmt.Sprintf("uid-%d", i), fmt.Sprintf("10.250.%d.%d", i/250, i%250+1),
			map[string]string{"app": fmt.Sprintf("svc-%d", i%services)})
		p.UID = types.UID(fmt.Sprintf("uid-%d", i))
		local = append(local, p)
		snap.Pods = append(snap.Pods, p)
	}
	return snap, local
}

// BenchmarkRecompute is what one change costs a node: index the
// snapshot, translate every local proxy and encode its document (as the
// server does before publishing). Target: 500 proxies ≤ 1 s.
func BenchmarkRecompute(b *testing.B) {
	for _, c := range []struct{ services, proxies int }{{100, 50}, {100, 500}, {500, 500}} {
		b.Run(fmt.Sprintf("services=%d/proxies=%d", c.services, c.proxies), func(b *testing.B) {
			snap, local := benchSnapshot(c.services, c.proxies)
			b.ReportAllocs()
			for b.Loop() {
				idx := NewIndex(snap, MeshOptions{})
				for _, pod := range local {
					if doc, _, _ := idx.TranslateJSON(pod, testIdentity); doc == nil {
						b.Fatal("no document")
					}
				}
			}
		})
	}
}

// BenchmarkEndpointPropagation is the node server end to end (fake
// API): one EndpointSlice changes, and the benchmark waits until every
// local proxy has a new document (debounce included). Target: ≤ 1 s for
// 500 proxies.
func BenchmarkEndpointPropagation(b *testing.B) {
	snap, local := benchSnapshot(100, 500)
	var objs []runtime.Object
	for _, o := range snap.Services {
		objs = append(objs, o)
	}
	for _, o := range snap.EndpointSlices {
		objs = append(objs, o)
	}
	for _, o := range snap.Pods {
		objs = append(objs, o)
	}
	client := fake.NewClientset(objs...)
	srv := New(client, istiofake.NewSimpleClientset(), nil, slog.New(slog.DiscardHandler),
		Options{NodeName: "node-a", DataDir: b.TempDir(), IstioSyncTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	versions := func() map[string]string {
		out := map[string]string{}
		for _, st := range srv.Statuses() {
			out[st.Pod] = st.Current
		}
		return out
	}
	waitAll := func(prev map[string]string) map[string]string {
		for {
			v := versions()
			changed := len(v) == len(local)
			for pod, ver := range v {
				if ver == "" || ver == prev[pod] {
					changed = false
					break
				}
			}
			if changed {
				return v
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	prev := waitAll(nil)
	es := snap.EndpointSlices[0].DeepCopy()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		es.Endpoints[0].Addresses = []string{fmt.Sprintf("10.251.%d.%d", i/250%250, i%250+1)}
		if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		prev = waitAll(prev)
	}
}
