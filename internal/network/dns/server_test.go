package dns_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/dns"
	"skiff.dev/skiff/internal/testenv"
)

// upstream is a fake outside resolver on loopback: www.example.org is
// 203.0.113.7, everything else NXDOMAIN.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; q.Name == "www.example.org." && q.Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IP{203, 0, 113, 7}})
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startServer runs a DNS server for node "node-a" on a loopback port.
func startServer(t *testing.T, client kubernetes.Interface, up string) (*dns.Server, func()) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	srv := dns.New(client, factory, testenv.Logger(t), dns.Options{NodeName: "node-a", Listen: "127.0.0.1:0", EndpointIP: "10.244.0.1", Upstreams: []string{up}})
	stop := testenv.Run(t, "dns server", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return srv.Run(ctx)
	})
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("dns server not ready after 30s")
	}
	return srv, stop
}

func ask(ctx context.Context, addr, network, name string, qtype uint16) (*mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := c.ExchangeContext(ctx, m, addr)
	return r, err
}

// answers are the answer section's A/AAAA addresses, CNAME and SRV
// targets, sorted.
func answers(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *mdns.A:
			out = append(out, r.A.String())
		case *mdns.AAAA:
			out = append(out, r.AAAA.String())
		case *mdns.CNAME:
			out = append(out, r.Target)
		case *mdns.SRV:
			out = append(out, r.Target)
		}
	}
	slices.Sort(out)
	return out
}

// expect waits until name answers want (nil: NXDOMAIN).
func expect(t *testing.T, addr, name string, qtype uint16, want ...string) {
	t.Helper()
	testenv.Eventually(t, name+" answers "+mdns.TypeToString[qtype]+" "+joined(want), func(ctx context.Context) (bool, error) {
		m, err := ask(ctx, addr, "udp", name, qtype)
		if err != nil {
			return false, err
		}
		if want == nil {
			return m.Rcode == mdns.RcodeNameError, nil
		}
		return m.Rcode == mdns.RcodeSuccess && slices.Equal(answers(m), want), errors.New(m.String())
	})
}

func joined(s []string) string {
	if s == nil {
		return "NXDOMAIN"
	}
	return strings.Join(s, " ")
}

func TestServerWithAPI(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := t.Context()
	c := env.Client
	if err := dns.EnsureService(ctx, c, dns.DefaultClusterIP); err != nil {
		t.Fatal(err)
	}
	srv, stop := startServer(t, c, upstream(t))
	addr := srv.Addr().String()

	// A Service appears, changes and goes.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.50", Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, addr, "hello.default.svc.cluster.local.", mdns.TypeA, "10.96.0.50")
	expect(t, addr, "_http._tcp.hello.default.svc.cluster.local.", mdns.TypeSRV, "hello.default.svc.cluster.local.")
	if m, err := ask(ctx, addr, "tcp", "hello.default.svc.cluster.local.", mdns.TypeA); err != nil || !slices.Equal(answers(m), []string{"10.96.0.50"}) {
		t.Errorf("over TCP: %v %v", m, err)
	}

	// A headless Service's endpoints follow its slices.
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "web", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := c.CoreV1().Services("default").Create(ctx, headless, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "nginx-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "nginx"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, Hostname: ptr.To("web-0"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("web"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	sl, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, addr, "web-0.nginx.default.svc.cluster.local.", mdns.TypeA, "10.244.0.5")
	sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.6"}, Hostname: ptr.To("web-1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	if sl, err = c.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, addr, "nginx.default.svc.cluster.local.", mdns.TypeA, "10.244.0.5", "10.244.0.6")
	expect(t, addr, "_web._tcp.nginx.default.svc.cluster.local.", mdns.TypeSRV,
		"web-0.nginx.default.svc.cluster.local.", "web-1.nginx.default.svc.cluster.local.")
	sl.Endpoints[0].Conditions.Ready = ptr.To(false)
	if _, err = c.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, addr, "web-0.nginx.default.svc.cluster.local.", mdns.TypeA)
	expect(t, addr, "nginx.default.svc.cluster.local.", mdns.TypeA, "10.244.0.6")

	if err := c.CoreV1().Services("default").Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, addr, "hello.default.svc.cluster.local.", mdns.TypeA)

	// Outside names are forwarded.
	expect(t, addr, "www.example.org.", mdns.TypeA, "203.0.113.7")

	// The node's endpoint of kube-dns is published, then removed on stop.
	var published *discoveryv1.EndpointSlice
	testenv.Eventually(t, "the node's kube-dns slice", func(ctx context.Context) (bool, error) {
		s, err := c.DiscoveryV1().EndpointSlices(dns.ServiceNamespace).Get(ctx, dns.SliceName("node-a"), metav1.GetOptions{})
		published = s
		return err == nil, err
	})
	e := published.Endpoints
	if published.Labels[discoveryv1.LabelServiceName] != "kube-dns" || published.Labels[discoveryv1.LabelManagedBy] != dns.ManagedBy ||
		len(e) != 1 || !slices.Equal(e[0].Addresses, []string{"10.244.0.1"}) || ptr.Deref(e[0].NodeName, "") != "node-a" ||
		!ptr.Deref(e[0].Conditions.Ready, false) || len(published.Ports) != 2 || *published.Ports[0].Port != int32(srv.Addr().Port()) {
		t.Errorf("slice %+v", published)
	}
	if len(published.OwnerReferences) != 1 || published.OwnerReferences[0].Name != "kube-dns" {
		t.Errorf("owner %v", published.OwnerReferences)
	}
	// A foreign edit is put back.
	published.Endpoints[0].Addresses = []string{"10.0.0.99"}
	if _, err := c.DiscoveryV1().EndpointSlices(dns.ServiceNamespace).Update(ctx, published, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the slice is repaired", func(ctx context.Context) (bool, error) {
		s, err := c.DiscoveryV1().EndpointSlices(dns.ServiceNamespace).Get(ctx, dns.SliceName("node-a"), metav1.GetOptions{})
		return err == nil && s.Endpoints[0].Addresses[0] == "10.244.0.1", err
	})
	stop()
	if _, err := c.DiscoveryV1().EndpointSlices(dns.ServiceNamespace).Get(ctx, dns.SliceName("node-a"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("slice after stop: %v, want not found", err)
	}
}

func TestEnsureService(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := t.Context()
	c := env.Client
	for range 2 { // idempotent
		if err := dns.EnsureService(ctx, c, dns.DefaultClusterIP); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := c.CoreV1().Services(dns.ServiceNamespace).Get(ctx, dns.ServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != dns.DefaultClusterIP || svc.Spec.Selector != nil || svc.Labels["k8s-app"] != "kube-dns" ||
		ptr.Deref(svc.Spec.InternalTrafficPolicy, "") != corev1.ServiceInternalTrafficPolicyLocal || len(svc.Spec.Ports) != 2 {
		t.Errorf("service %+v", svc)
	}
	// Damaged, it is repaired; another address is a conflict.
	svc.Spec.Ports = svc.Spec.Ports[:1]
	if _, err := c.CoreV1().Services(dns.ServiceNamespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dns.EnsureService(ctx, c, dns.DefaultClusterIP); err != nil {
		t.Fatal(err)
	}
	if svc, _ = c.CoreV1().Services(dns.ServiceNamespace).Get(ctx, dns.ServiceName, metav1.GetOptions{}); len(svc.Spec.Ports) != 2 {
		t.Errorf("ports not repaired: %v", svc.Spec.Ports)
	}
	if err := dns.EnsureService(ctx, c, "10.96.0.11"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("other cluster IP: %v, want conflict", err)
	}
}
