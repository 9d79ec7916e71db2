package apiserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/testenv"
)

func svc(name string, edit ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, e := range edit {
		e(s)
	}
	return s
}

func nodePort(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }

func clusterIP(ip string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.ClusterIP = ip }
}

// wantInvalid checks err is a 422 naming field with a message containing msg.
func wantInvalid(t *testing.T, err error, field, msg string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("err = %v, want 422 Invalid", err)
	}
	st := err.(apierrors.APIStatus).Status()
	for _, c := range st.Details.Causes {
		if c.Field == field && strings.Contains(c.Message, msg) {
			return
		}
	}
	t.Fatalf("err = %v, want a cause on %s containing %q", err, field, msg)
}

func inCIDR(t *testing.T, cidr, ip string) {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil || !netip.MustParsePrefix(cidr).Contains(a) {
		t.Fatalf("cluster IP %q not in %s", ip, cidr)
	}
}

// TestServiceAllocation exercises what a create, update and delete of a
// Service allocate and release, as upstream's registry does.
func TestServiceAllocation(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) { o.AdvertiseAddress = "192.0.2.10" })
	ctx := context.Background()
	svcs := env.Client.CoreV1().Services("default")
	ips := env.Client.NetworkingV1().IPAddresses()

	t.Run("kubernetes service", func(t *testing.T) {
		k, err := svcs.Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if k.Spec.ClusterIP != "10.96.0.1" || len(k.Spec.Ports) != 1 || k.Spec.Ports[0].Port != 443 || k.Spec.Ports[0].Name != "https" {
			t.Fatalf("kubernetes service spec %+v", k.Spec)
		}
		rec, err := ips.Get(ctx, "10.96.0.1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ref := rec.Spec.ParentRef; ref == nil || ref.Resource != "services" || ref.Namespace != "default" || ref.Name != "kubernetes" {
			t.Fatalf("IPAddress parentRef %+v", rec.Spec.ParentRef)
		}
		if rec.Labels["ipaddress.kubernetes.io/managed-by"] != "ipallocator.k8s.io" {
			t.Errorf("IPAddress labels %v", rec.Labels)
		}
		// Its endpoints name the advertised address and the API server's port.
		u, err := url.Parse(env.Config.Host)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(u.Port())
		if k.Spec.Ports[0].TargetPort.IntValue() != port {
			t.Errorf("targetPort %v, want the API server's %d", k.Spec.Ports[0].TargetPort, port)
		}
		ep, err := env.Client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != "192.0.2.10" ||
			ep.Subsets[0].Ports[0].Port != int32(port) || ep.Labels["endpointslice.kubernetes.io/skip-mirror"] != "true" {
			t.Errorf("kubernetes endpoints %+v", ep)
		}
		slice, err := env.Client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if slice.Labels["kubernetes.io/service-name"] != "kubernetes" || len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "192.0.2.10" ||
			*slice.Ports[0].Port != int32(port) {
			t.Errorf("kubernetes endpoint slice %+v", slice)
		}
	})

	t.Run("sequential creates get distinct dynamic addresses", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 5 {
			s, err := svcs.Create(ctx, svc(fmt.Sprintf("seq-%d", i)), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			inCIDR(t, "10.96.0.0/12", s.Spec.ClusterIP)
			// Dynamic addresses come from above the static band (256 addresses).
			if netip.MustParseAddr(s.Spec.ClusterIP).Less(netip.MustParseAddr("10.96.1.1")) {
				t.Errorf("dynamic address %s is in the static band", s.Spec.ClusterIP)
			}
			if seen[s.Spec.ClusterIP] {
				t.Fatalf("address %s given twice", s.Spec.ClusterIP)
			}
			seen[s.Spec.ClusterIP] = true
			if len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
				t.Errorf("clusterIPs %v, clusterIP %s", s.Spec.ClusterIPs, s.Spec.ClusterIP)
			}
			if len(s.Spec.IPFamilies) != 1 || s.Spec.IPFamilies[0] != corev1.IPv4Protocol ||
				s.Spec.IPFamilyPolicy == nil || *s.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
				t.Errorf("ipFamilies %v policy %v", s.Spec.IPFamilies, s.Spec.IPFamilyPolicy)
			}
			if s.Spec.Ports[0].NodePort != 0 {
				t.Errorf("ClusterIP service got node port %d", s.Spec.Ports[0].NodePort)
			}
			if _, err := ips.Get(ctx, s.Spec.ClusterIP, metav1.GetOptions{}); err != nil {
				t.Errorf("no IPAddress record for %s: %v", s.Spec.ClusterIP, err)
			}
		}
	})

	t.Run("requested address", func(t *testing.T) {
		s, err := svcs.Create(ctx, svc("want-50", clusterIP("10.96.0.50")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Spec.ClusterIP != "10.96.0.50" {
			t.Fatalf("clusterIP %s, want the requested 10.96.0.50", s.Spec.ClusterIP)
		}
		_, err = svcs.Create(ctx, svc("want-50-again", clusterIP("10.96.0.50")), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.clusterIPs", "failed to allocate IP 10.96.0.50: provided IP is already allocated")
		_, err = svcs.Create(ctx, svc("outside", clusterIP("192.168.7.7")), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.clusterIPs", "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12")
		// The failed creates left nothing behind.
		if _, err := svcs.Get(ctx, "want-50-again", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("failed create stored a service: %v", err)
		}
		// Deleting frees the address for the next one to ask.
		if err := svcs.Delete(ctx, "want-50", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ips.Get(ctx, "10.96.0.50", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("IPAddress 10.96.0.50 after delete: %v", err)
		}
		if _, err := svcs.Create(ctx, svc("want-50-again", clusterIP("10.96.0.50")), metav1.CreateOptions{}); err != nil {
			t.Fatalf("address not released by delete: %v", err)
		}
	})

	t.Run("headless and external name", func(t *testing.T) {
		h, err := svcs.Create(ctx, svc("headless", clusterIP("None")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Spec.ClusterIP != "None" || len(h.Spec.ClusterIPs) != 1 || h.Spec.ClusterIPs[0] != "None" ||
			len(h.Spec.IPFamilies) != 1 || *h.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Errorf("headless spec: clusterIPs %v families %v policy %v", h.Spec.ClusterIPs, h.Spec.IPFamilies, *h.Spec.IPFamilyPolicy)
		}
		sl, err := svcs.Create(ctx, svc("headless-manual", clusterIP("None"), func(s *corev1.Service) { s.Spec.Selector = nil }), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *sl.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack ||
			len(sl.Spec.IPFamilies) != 2 || sl.Spec.IPFamilies[1] != corev1.IPv6Protocol {
			t.Errorf("selectorless headless: families %v policy %v, want both families and RequireDualStack", sl.Spec.IPFamilies, *sl.Spec.IPFamilyPolicy)
		}
		en, err := svcs.Create(ctx, svc("extname", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector = corev1.ServiceTypeExternalName, "example.com", nil
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if en.Spec.ClusterIP != "" || len(en.Spec.ClusterIPs) != 0 || len(en.Spec.IPFamilies) != 0 || en.Spec.IPFamilyPolicy != nil {
			t.Errorf("ExternalName spec %+v", en.Spec)
		}
		_, err = svcs.Create(ctx, svc("dual", func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack) }), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ipFamilyPolicy", "this cluster is not configured for dual-stack services")
		_, err = svcs.Create(ctx, svc("v6", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ipFamilies[0]", "not configured on this cluster")
	})

	t.Run("node ports", func(t *testing.T) {
		s, err := svcs.Create(ctx, svc("np", nodePort, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
				{Name: "web", Port: 80},
			}
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := s.Spec.Ports
		for _, sp := range p {
			if sp.NodePort < 30000 || sp.NodePort > 32767 {
				t.Errorf("port %s: node port %d outside 30000-32767", sp.Name, sp.NodePort)
			}
		}
		if p[0].NodePort != p[1].NodePort || p[0].NodePort == p[2].NodePort {
			t.Errorf("node ports %d %d %d: want the two port-53 entries to share one", p[0].NodePort, p[1].NodePort, p[2].NodePort)
		}
		_, err = svcs.Create(ctx, svc("np-clash", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = p[2].NodePort }), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
		_, err = svcs.Create(ctx, svc("np-range", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 8080 }), metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is not in the valid range. The range of valid ports is 30000-32767")
		req, err := svcs.Create(ctx, svc("np-req", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }), metav1.CreateOptions{})
		if err != nil || req.Spec.Ports[0].NodePort != 30080 {
			t.Fatalf("requested node port: %v %v", err, req)
		}

		lb, err := svcs.Create(ctx, svc("lb-local", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if hc := lb.Spec.HealthCheckNodePort; hc < 30000 || hc > 32767 || hc == lb.Spec.Ports[0].NodePort || lb.Spec.Ports[0].NodePort == 0 {
			t.Errorf("LoadBalancer Local: node port %d health check port %d", lb.Spec.Ports[0].NodePort, hc)
		}
		noNP, err := svcs.Create(ctx, svc("lb-no-np", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if noNP.Spec.Ports[0].NodePort != 0 {
			t.Errorf("allocateLoadBalancerNodePorts=false got node port %d", noNP.Spec.Ports[0].NodePort)
		}
	})

	t.Run("updates allocate and release", func(t *testing.T) {
		s, err := svcs.Create(ctx, svc("upd"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := s.Spec.ClusterIP
		// ClusterIP → NodePort allocates a node port.
		s, err = svcs.Patch(ctx, "upd", types.MergePatchType, []byte(`{"spec":{"type":"NodePort"}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		np := s.Spec.Ports[0].NodePort
		if np == 0 || s.Spec.ClusterIP != ip {
			t.Fatalf("after type NodePort: node port %d, clusterIP %s (was %s)", np, s.Spec.ClusterIP, ip)
		}
		// A replace that leaves the allocations out keeps them.
		s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports[0].NodePort = "", nil, 0
		if s, err = svcs.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if s.Spec.ClusterIP != ip || s.Spec.Ports[0].NodePort != np {
			t.Fatalf("replace without allocations: clusterIP %s node port %d, want %s %d", s.Spec.ClusterIP, s.Spec.Ports[0].NodePort, ip, np)
		}
		// NodePort → ClusterIP releases the node port.
		if s, err = svcs.Patch(ctx, "upd", types.MergePatchType, []byte(`{"spec":{"type":"ClusterIP"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("after type ClusterIP: node port %d, externalTrafficPolicy %q", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
		}
		if _, err := svcs.Create(ctx, svc("upd-takes-port", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = np }), metav1.CreateOptions{}); err != nil {
			t.Fatalf("node port %d not released: %v", np, err)
		}
		// ClusterIP → ExternalName releases the address; and back allocates one.
		if s, err = svcs.Patch(ctx, "upd", types.MergePatchType, []byte(`{"spec":{"type":"ExternalName","externalName":"example.com"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if s.Spec.ClusterIP != "" || len(s.Spec.IPFamilies) != 0 {
			t.Errorf("ExternalName keeps clusterIP %q families %v", s.Spec.ClusterIP, s.Spec.IPFamilies)
		}
		if _, err := ips.Get(ctx, ip, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("IPAddress %s after type ExternalName: %v", ip, err)
		}
		if s, err = svcs.Patch(ctx, "upd", types.MergePatchType, []byte(`{"spec":{"type":"ClusterIP","externalName":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		inCIDR(t, "10.96.0.0/12", s.Spec.ClusterIP)
		// The cluster IP is immutable.
		_, err = svcs.Patch(ctx, "upd", types.MergePatchType, []byte(`{"spec":{"clusterIP":"10.96.0.99","clusterIPs":["10.96.0.99"]}}`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("changing clusterIP: %v, want 422", err)
		}
	})

	t.Run("dry run allocates nothing", func(t *testing.T) {
		s, err := svcs.Create(ctx, svc("dry", nodePort), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		inCIDR(t, "10.96.0.0/12", s.Spec.ClusterIP)
		if s.Spec.Ports[0].NodePort == 0 {
			t.Error("dry run shows no node port")
		}
		if _, err := ips.Get(ctx, s.Spec.ClusterIP, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry run recorded its address: %v", err)
		}
		if _, err := svcs.Create(ctx, svc("dry-ip", clusterIP(s.Spec.ClusterIP)), metav1.CreateOptions{}); err != nil {
			t.Errorf("address shown by a dry run is not free: %v", err)
		}
		_, err = svcs.Create(ctx, svc("dry-clash", clusterIP(s.Spec.ClusterIP)), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		wantInvalid(t, err, "spec.clusterIPs", "provided IP is already allocated")
	})
}

// TestServiceAllocationConcurrent creates 50 NodePort Services at once:
// each gets its own address and node port.
func TestServiceAllocationConcurrent(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	svcs := env.Client.CoreV1().Services("default")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := svcs.Create(ctx, svc(fmt.Sprintf("par-%d", i), nodePort), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list, err := svcs.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, s := range list.Items {
		if other, dup := ips[s.Spec.ClusterIP]; dup {
			t.Errorf("%s and %s share %s", s.Name, other, s.Spec.ClusterIP)
		}
		ips[s.Spec.ClusterIP] = s.Name
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			if other, dup := ports[p.NodePort]; dup {
				t.Errorf("%s and %s share node port %d", s.Name, other, p.NodePort)
			}
			ports[p.NodePort] = s.Name
		}
	}
	if len(ips) != n+1 || len(ports) != n {
		t.Errorf("%d addresses and %d node ports, want %d and %d", len(ips), len(ports), n+1, n)
	}
	recs, err := env.Client.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != n+2 {
		t.Errorf("%d IPAddress records, want %d (the Services, kubernetes and kube-dns)", len(recs.Items), n+2)
	}
}

// TestServiceAllocationExhaustion fills a /29 and a five-port node port
// range.
func TestServiceAllocationExhaustion(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) {
		o.ServiceCIDR = "10.0.7.0/29"
		o.ServiceNodePortRange = "31000-31004"
	})
	ctx := context.Background()
	svcs := env.Client.CoreV1().Services("default")
	// 10.0.7.1-6 are assignable; default/kubernetes holds .1.
	k, err := svcs.Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || k.Spec.ClusterIP != "10.0.7.1" {
		t.Fatalf("kubernetes service: %v %v", err, k)
	}
	for i := range 5 {
		s, err := svcs.Create(ctx, svc(fmt.Sprintf("fill-%d", i), nodePort), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		inCIDR(t, "10.0.7.0/29", s.Spec.ClusterIP)
		if np := s.Spec.Ports[0].NodePort; np < 31000 || np > 31004 {
			t.Errorf("node port %d outside 31000-31004", np)
		}
	}
	_, err = svcs.Create(ctx, svc("one-too-many"), metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed to allocate a serviceIP: range is full") {
		t.Fatalf("create in a full range: %v", err)
	}
	// A delete makes room again.
	if err := svcs.Delete(ctx, "fill-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, svc("refill", nodePort), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create after a delete in a full range: %v", err)
	}
}

// TestServiceAllocationNodePortsFull fills the node port range alone.
func TestServiceAllocationNodePortsFull(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) { o.ServiceNodePortRange = "31000-31001" })
	ctx := context.Background()
	svcs := env.Client.CoreV1().Services("default")
	for i := range 2 {
		if _, err := svcs.Create(ctx, svc(fmt.Sprintf("np-%d", i), nodePort), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svcs.Create(ctx, svc("np-2", nodePort), metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed to allocate a nodePort: range is full") {
		t.Fatalf("create with no node port left: %v", err)
	}
	// The address that create took was given back.
	list, err := env.Client.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 4 {
		t.Errorf("%d IPAddress records, want 4 (kubernetes, kube-dns and two services)", len(list.Items))
	}
}

// BenchmarkServiceCreate measures what allocation adds to a create: a
// ConfigMap (no allocation), a ClusterIP Service (one address record) and
// a NodePort Service (an address and a node port record), one at a time
// and 8 at once. Each runs on a fresh server, its ranges empty.
func BenchmarkServiceCreate(b *testing.B) {
	ctx := context.Background()
	type createFunc func(cs kubernetes.Interface, name string) error
	creates := []struct {
		kind   string
		create createFunc
	}{
		{"configmap", func(cs kubernetes.Interface, name string) error {
			_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			return err
		}},
		{"service-clusterip", func(cs kubernetes.Interface, name string) error {
			_, err := cs.CoreV1().Services("default").Create(ctx, svc(name), metav1.CreateOptions{})
			return err
		}},
		{"service-nodeport", func(cs kubernetes.Interface, name string) error {
			_, err := cs.CoreV1().Services("default").Create(ctx, svc(name, nodePort), metav1.CreateOptions{})
			return err
		}},
	}
	for _, c := range creates {
		b.Run(c.kind, func(b *testing.B) {
			cs := testenv.Start(b, testenv.WithoutControllers).Client
			i := 0
			for b.Loop() {
				i++
				if err := c.create(cs, fmt.Sprintf("b-%d", i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.kind+"-parallel", func(b *testing.B) {
			cs := testenv.Start(b, testenv.WithoutControllers).Client
			var n atomic.Int64
			b.SetParallelism(4) // 8 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.create(cs, fmt.Sprintf("b-%d", n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
