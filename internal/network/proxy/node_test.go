package proxy_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"skiff.dev/skiff/internal/network/proxy"
	"skiff.dev/skiff/internal/testenv"
)

// Services of TestNode: name, ClusterIP. (Not 10.96.0.1 or 10.96.0.10:
// the API server gives those to default/kubernetes and kube-dns.)
const (
	helloIP   = "10.96.0.20" // NodePort 30080, three pods
	emptyIP   = "10.96.0.21" // selects nothing (TCP 80, UDP 53)
	stickyIP  = "10.96.0.22" // sessionAffinity ClientIP
	localIP   = "10.96.0.23" // NodePort 30081, externalTrafficPolicy Local
	selfIP    = "10.96.0.24" // only pod1 (hairpin)
	backendIP = "10.96.0.25" // only pod2
	dnsIP     = "10.96.0.26" // UDP 53 → 5353
	lbSvcIP   = "10.96.0.27" // LoadBalancer 203.0.113.100, externalIP 198.51.100.7
	remoteIP  = "10.96.0.28" // NodePort 30083, Local, its endpoint "on node2"
)

// TestNode runs the proxy on a test node against a real API server and
// checks the data path: spread, scaling, no endpoints, affinity, NodePort
// and traffic policy Local, load-balancer and external IPs, hairpin,
// source addresses, UDP, a restart and clean removal.
func TestNode(t *testing.T) {
	n := newTestNode(t, 3)
	c := n.env.Client
	ctx := t.Context()
	p1, p2, p3 := n.pods[0], n.pods[1], n.pods[2]

	// A decoy table of someone else's, and the ruleset before the proxy.
	proxy.Nft(t, n.node, "add", "table", "inet", "decoy")
	proxy.Nft(t, n.node, "add", "chain", "inet", "decoy", "in", "{ type filter hook input priority 0; policy accept; }")
	proxy.Nft(t, n.node, "add", "rule", "inet", "decoy", "in", "tcp", "dport", "9", "accept")
	before := proxy.Nft(t, n.node, "list", "ruleset")

	nodePort := func(np int32, local bool) proxy.SvcOpt {
		return func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = np
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			if local {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}
		}
	}
	httpSlice := func(svc string, eps ...epSpec) *discoveryv1.EndpointSlice {
		return slice(svc, svc+"-1", "http", corev1.ProtocolTCP, httpPort, eps...)
	}
	dnsPort := func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	}
	create(t, c,
		proxy.Service("hello", helloIP, nodePort(30080, false)), httpSlice("hello", ready(p1, p2, p3)...),
		proxy.Service("empty", emptyIP, func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
		}),
		proxy.Service("sticky", stickyIP, func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: proxy.Ptr(int32(60))}}
		}), httpSlice("sticky", ready(p1, p2, p3)...),
		proxy.Service("local", localIP, nodePort(30081, true)), httpSlice("local", ready(p1, p2, p3)...),
		proxy.Service("self", selfIP), httpSlice("self", ready(p1)...),
		proxy.Service("backend", backendIP), httpSlice("backend", ready(p2)...),
		proxy.Service("dns", dnsIP, dnsPort), slice("dns", "dns-1", "dns", corev1.ProtocolUDP, udpServerPort, ready(p1, p2, p3)...),
		proxy.Service("lb", lbSvcIP, nodePort(30082, false), func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{externalIP}
		}), httpSlice("lb", ready(p1, p2, p3)...),
		proxy.Service("remote", remoteIP, nodePort(30083, true)), httpSlice("remote", epSpec{pod: p3, ready: true, node: "node2"}),
	)
	lb, err := c.CoreV1().Services("default").Get(ctx, "lb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
	if _, err := c.CoreV1().Services("default").UpdateStatus(ctx, lb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	_, stop := n.startProxy(proxy.Options{})
	hello := helloIP + ":80"
	testenv.Eventually(t, "hello answers on its ClusterIP", func(context.Context) (bool, error) {
		_, err := get(p1.ns, hello)
		return err == nil, err
	})
	testenv.Eventually(t, "the load-balancer IP is programmed", func(context.Context) (bool, error) {
		_, err := get(n.client, lbIP+":80")
		return err == nil, err
	})

	t.Run("clusterip spreads from a pod", func(t *testing.T) {
		if seen := spread(t, p1.ns, hello, 40); len(seen) != 3 {
			t.Fatalf("answers %v, want all three pods", seen)
		}
	})
	t.Run("clusterip spreads from the node, masqueraded", func(t *testing.T) {
		if seen := spread(t, n.node, hello, 40); len(seen) != 3 {
			t.Fatalf("answers %v, want all three pods", seen)
		}
		a, err := get(n.node, hello)
		if err != nil {
			t.Fatal(err)
		}
		if _, from := who(a); from != podGateway {
			t.Fatalf("pod saw the node as %s, want %s (masqueraded)", from, podGateway)
		}
	})
	t.Run("pod to service to pod keeps the source", func(t *testing.T) {
		a, err := get(p1.ns, backendIP+":80")
		if err != nil {
			t.Fatal(err)
		}
		if pod, from := who(a); pod != "pod2" || from != p1.ip {
			t.Fatalf("answer %q, want pod2 seeing %s", a, p1.ip)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		a, err := get(p1.ns, selfIP+":80")
		if err != nil {
			t.Fatal(err)
		}
		if pod, from := who(a); pod != "pod1" || from != podGateway {
			t.Fatalf("answer %q, want pod1 seeing %s", a, podGateway)
		}
	})
	t.Run("no endpoints: refused at once", func(t *testing.T) {
		refused(t, p1.ns, emptyIP+":80")
		refused(t, n.node, emptyIP+":80")
		refused(t, p1.ns, helloIP+":81") // a port the Service does not have
		if _, err := udpAsk(p1.ns, emptyIP+":53"); !isRefused(err) {
			t.Fatalf("UDP to a Service without endpoints: %v, want refused (ICMP port unreachable)", err)
		}
	})
	t.Run("unallocated clusterip is dropped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := dialIn(ctx, p1.ns, "tcp", "10.96.0.99:80")
		if err == nil {
			c.Close()
			t.Fatal("connected to an address no Service has")
		}
		if isRefused(err) {
			t.Fatalf("refused (%v), want dropped", err)
		}
	})
	t.Run("session affinity sticks", func(t *testing.T) {
		if seen := spread(t, p1.ns, stickyIP+":80", 20); len(seen) != 1 {
			t.Fatalf("answers %v, want one pod", seen)
		}
		if seen := spread(t, p2.ns, stickyIP+":80", 20); len(seen) != 1 {
			t.Fatalf("answers %v, want one pod", seen)
		}
	})
	t.Run("nodeport from outside", func(t *testing.T) {
		addr := nodeUplinkIP + ":30080"
		if seen := spread(t, n.client, addr, 40); len(seen) != 3 {
			t.Fatalf("answers %v, want all three pods", seen)
		}
		a, err := get(n.client, addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, from := who(a); from != podGateway {
			t.Fatalf("externalTrafficPolicy Cluster: pod saw %s, want %s (masqueraded)", from, podGateway)
		}
	})
	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		a, err := get(n.client, nodeUplinkIP+":30081")
		if err != nil {
			t.Fatal(err)
		}
		if _, from := who(a); from != clientIP {
			t.Fatalf("pod saw %s, want the client %s", from, clientIP)
		}
	})
	t.Run("externalTrafficPolicy Local without a local endpoint", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if c, err := dialIn(ctx, n.client, "tcp", nodeUplinkIP+":30083"); err == nil {
			c.Close()
			t.Fatal("outside traffic reached an endpoint of another node")
		}
		// Pods are not held to the policy.
		a, err := get(p1.ns, nodeUplinkIP+":30083")
		if err != nil {
			t.Fatal(err)
		}
		if pod, _ := who(a); pod != "pod3" {
			t.Fatalf("answer %q, want pod3", a)
		}
	})
	t.Run("load-balancer and external IPs", func(t *testing.T) {
		for _, addr := range []string{lbIP + ":80", externalIP + ":80", nodeUplinkIP + ":30082"} {
			if seen := spread(t, n.client, addr, 30); len(seen) != 3 {
				t.Fatalf("%s: answers %v, want all three pods", addr, seen)
			}
		}
	})
	t.Run("udp", func(t *testing.T) {
		seen := map[string]bool{}
		for range 40 {
			a, err := udpAsk(p1.ns, dnsIP+":53")
			if err != nil {
				t.Fatal(err)
			}
			pod, from := who(a)
			want := p1.ip
			if pod == "pod1" {
				want = podGateway // hairpin
			}
			if from != want {
				t.Fatalf("UDP answer %q: pod saw %s, want %s", a, from, want)
			}
			seen[pod] = true
		}
		if len(seen) != 3 {
			t.Fatalf("UDP answers from %v, want all three pods", seen)
		}
	})

	t.Run("a udp flow leaves a removed endpoint", func(t *testing.T) {
		// One socket, one source port: conntrack would keep sending its
		// datagrams to the endpoint the first one went to.
		conn, err := dialIn(context.Background(), p1.ns, "udp", dnsIP+":53")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ask := func() string {
			t.Helper()
			if _, err := conn.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(dialTimeout))
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			pod, _ := who(string(buf[:n]))
			return pod
		}
		first := ask()
		if again := ask(); again != first {
			t.Fatalf("one flow answered by %s then %s", first, again)
		}
		var keep []*testPod
		for _, p := range n.pods {
			if p.name != first {
				keep = append(keep, p)
			}
		}
		updateSlice(t, c, slice("dns", "dns-1", "dns", corev1.ProtocolUDP, udpServerPort, ready(keep...)...))
		dnsChain := proxy.ChainName(proxy.PrefixCluster, "default/dns/udp/dns")
		gone := n.pods[0].ip
		for _, p := range n.pods {
			if p.name == first {
				gone = p.ip
			}
		}
		waitChain(t, n.node, dnsChain, func(rules string) bool { return !strings.Contains(rules, gone) })
		testenv.Eventually(t, "the flow moves to a live endpoint", func(context.Context) (bool, error) {
			return ask() != first, nil
		})
		updateSlice(t, c, slice("dns", "dns-1", "dns", corev1.ProtocolUDP, udpServerPort, ready(p1, p2, p3)...))
	})
	t.Run("nodeport from the node itself", func(t *testing.T) {
		if seen := spread(t, n.node, nodeUplinkIP+":30080", 30); len(seen) != 3 {
			t.Fatalf("answers %v, want all three pods", seen)
		}
	})

	helloChain := proxy.ChainName(proxy.PrefixCluster, "default/hello/tcp/http")
	t.Run("scale down: no new connection to the removed endpoint", func(t *testing.T) {
		start := time.Now()
		updateSlice(t, c, httpSlice("hello", ready(p1, p2)...))
		waitChain(t, n.node, helloChain, func(rules string) bool { return !strings.Contains(rules, p3.ip) })
		t.Logf("endpoint removal reached the kernel %v after the API call", time.Since(start))
		if seen := spread(t, p1.ns, hello, 40); seen["pod3"] > 0 || len(seen) != 2 {
			t.Fatalf("answers %v, want pod1 and pod2 only", seen)
		}
	})
	t.Run("scale up changes the spread", func(t *testing.T) {
		updateSlice(t, c, httpSlice("hello", ready(p1, p2, p3)...))
		waitChain(t, n.node, helloChain, func(rules string) bool { return strings.Contains(rules, p3.ip) })
		if seen := spread(t, p1.ns, hello, 40); len(seen) != 3 {
			t.Fatalf("answers %v, want all three pods", seen)
		}
	})
	t.Run("not-ready endpoints get nothing", func(t *testing.T) {
		updateSlice(t, c, httpSlice("hello", epSpec{pod: p1, ready: true}, epSpec{pod: p2}, epSpec{pod: p3}))
		waitChain(t, n.node, helloChain, func(rules string) bool { return !strings.Contains(rules, p2.ip) })
		if seen := spread(t, p1.ns, hello, 20); len(seen) != 1 || seen["pod1"] != 20 {
			t.Fatalf("answers %v, want pod1 only", seen)
		}
		updateSlice(t, c, httpSlice("hello", ready(p1, p2, p3)...))
	})
	t.Run("a deleted service stops answering", func(t *testing.T) {
		if err := c.CoreV1().Services("default").Delete(ctx, "self", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the self Service's ClusterIP is gone", func(context.Context) (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			c, err := dialIn(ctx, p1.ns, "tcp", selfIP+":80")
			if err == nil {
				c.Close()
			}
			return err != nil, nil
		})
	})

	t.Run("restart keeps traffic flowing and the table", func(t *testing.T) {
		// Affinity entries survive too; only their countdown moves.
		expires := regexp.MustCompile(` expires [0-9hms]+`)
		list := func() string {
			return proxy.Comparable(expires.ReplaceAllString(proxy.Nft(t, n.node, "list", "table", "ip", proxy.DefaultTable), ""))
		}
		table := list()
		stop()
		if seen := spread(t, p1.ns, hello, 20); len(seen) == 0 {
			t.Fatal("no answers while the proxy is down")
		}
		_, stop2 := n.startProxy(proxy.Options{})
		if d := cmp.Diff(table, list()); d != "" {
			t.Fatalf("the table changed across a restart (-before +after):\n%s", d)
		}
		if seen := spread(t, p1.ns, hello, 30); len(seen) != 3 {
			t.Fatalf("answers %v after the restart, want all three pods", seen)
		}

		// A Service deleted while the proxy is down goes when it is back.
		stop2()
		if err := c.CoreV1().Services("default").Delete(ctx, "backend", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		backendChain := proxy.ChainName(proxy.PrefixCluster, "default/backend/tcp/http")
		if !strings.Contains(proxy.Nft(t, n.node, "list", "chains", "ip"), backendChain) {
			t.Fatal("the backend chain is not there to begin with")
		}
		_, stop3 := n.startProxy(proxy.Options{})
		defer stop3()
		if _, err := get(p1.ns, backendIP+":80"); err == nil {
			t.Fatal("a Service deleted while the proxy was down still answers")
		}
		testenv.Eventually(t, "the deleted Service's chains are deleted", func(context.Context) (bool, error) {
			return !strings.Contains(proxy.Nft(t, n.node, "list", "chains", "ip"), backendChain), nil
		})
	})

	t.Run("cleanup removes the table and nothing else", func(t *testing.T) {
		p, stop3 := n.startProxy(proxy.Options{})
		stop3()
		if err := p.Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
		if after := proxy.Nft(t, n.node, "list", "ruleset"); after != before {
			t.Fatalf("ruleset after Cleanup differs from before the proxy:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if err := p.Cleanup(context.Background()); err != nil {
			t.Fatalf("second Cleanup: %v", err)
		}
	})
}

// create creates Services and EndpointSlices.
func create(t testing.TB, c kubernetes.Interface, objs ...any) {
	t.Helper()
	for _, o := range objs {
		var err error
		switch x := o.(type) {
		case *corev1.Service:
			_, err = c.CoreV1().Services(x.Namespace).Create(t.Context(), x, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = c.DiscoveryV1().EndpointSlices(x.Namespace).Create(t.Context(), x, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("unexpected %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// updateSlice replaces an EndpointSlice.
func updateSlice(t testing.TB, c kubernetes.Interface, sl *discoveryv1.EndpointSlice) {
	t.Helper()
	cur, err := c.DiscoveryV1().EndpointSlices(sl.Namespace).Get(t.Context(), sl.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl.ResourceVersion = cur.ResourceVersion
	if _, err := c.DiscoveryV1().EndpointSlices(sl.Namespace).Update(t.Context(), sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitChain waits until a policy chain's rules and spread map (as nft
// lists them) satisfy ok.
func waitChain(t testing.TB, ns, chain string, ok func(rules string) bool) {
	t.Helper()
	testenv.Eventually(t, "chain "+chain+" changes", func(context.Context) (bool, error) {
		text := proxy.Nft(t, ns, "list", "chain", "ip", proxy.DefaultTable, chain)
		if strings.Contains(text, "@"+proxy.SpreadMapName(chain)) {
			text += proxy.Nft(t, ns, "list", "map", "ip", proxy.DefaultTable, proxy.SpreadMapName(chain))
		}
		return ok(text), nil
	})
}
