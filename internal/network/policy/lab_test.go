package policy_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/network/policy"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// As root, this test binary re-executes itself in a network namespace of
// its own (unshare -n); the API server listens on its loopback. The lab's
// "node" and "pods" are further namespaces the tests create.
func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

const (
	labNode    = "node-1"
	labGateway = "10.244.0.1"
	labPort    = "8080"
	// probeTimeout bounds one connection attempt; a dropped SYN takes
	// this long to count as blocked.
	probeTimeout = 400 * time.Millisecond
	// settle bounds how long a transition may take to show (policy
	// changes reach new flows within a second; the rest is slack for a
	// loaded machine).
	settle = 10 * time.Second
)

// lab is the workshop's NetworkPolicy lab: a node namespace with the pods
// bridge (through the bridge package, as the pod runtime sets it up), pod
// namespaces serving TCP, a UDP "DNS" echo on the gateway, and the API.
type lab struct {
	t      *testing.T
	dir    string
	node   string // netns path
	client kubernetes.Interface
	pods   []*labPod
}

type labPod struct {
	ns, name, ip, netns string
}

func (p *labPod) String() string { return p.ns + "/" + p.name }

// loUp brings up the loopback of the test's namespace (the API server
// listens there).
func loUp(t testing.TB) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
}

func newLab(t *testing.T) *lab {
	policy.RequireLab(t)
	loUp(t)
	dir := t.TempDir()
	l := &lab{t: t, dir: dir, node: filepath.Join(dir, "ns", "node")}
	if err := netns.Create(l.node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(l.node) })

	nets := bridge.New(bridge.Options{StateDir: filepath.Join(dir, "net"), NetNS: l.node, Table: "skiff-node",
		DefaultBridge: "skiff-node0", DefaultSubnet: "172.31.255.0/24", Upstreams: []string{"127.0.0.1:53"},
		Logger: testenv.Logger(t)})
	if err := nets.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nets.Close() })
	if _, err := nets.CreateNetwork(t.Context(), bridge.NetworkConfig{Name: "pods", Subnet: "10.244.0.0/24", Bridge: "skiff-pods"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ ns, name, ip string }{
		{"shop", "frontend", "10.244.0.11"},
		{"shop", "staging", "10.244.0.12"},
		{"shop", "db", "10.244.0.13"},
		{"dev", "client", "10.244.0.21"},
		{"dev", "tools", "10.244.0.22"},
	} {
		pod := &labPod{ns: p.ns, name: p.name, ip: p.ip, netns: filepath.Join(dir, "ns", p.ns+"-"+p.name)}
		if err := netns.Create(pod.netns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(pod.netns) })
		id := p.ns + "-" + p.name
		if _, err := nets.Attach(t.Context(), bridge.AttachRequest{NetworkID: "pods", ContainerID: id, NetNS: pod.netns, IP: p.ip}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nets.Detach(context.Background(), "pods", id) })
		serveName(t, pod.netns, p.ip+":"+labPort, pod.String())
		l.pods = append(l.pods, pod)
	}
	// The node's DNS server stand-in, and another node service.
	serveUDPEcho(t, l.node, labGateway+":53")
	serveUDPEcho(t, l.node, labGateway+":5353")
	return l
}

// serveName accepts connections in ns, greets each with name and then
// echoes its lines.
func serveName(t testing.TB, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, name)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, sc.Text())
				}
			}()
		}
	}()
}

func serveUDPEcho(t testing.TB, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// dial connects from namespace ns to the pod to and reads its greeting.
func dial(ns string, to *labPod) (net.Conn, *bufio.Reader, error) {
	var c net.Conn
	err := netns.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", to.ip+":"+labPort, probeTimeout)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * probeTimeout))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != to.String() {
		c.Close()
		return nil, nil, fmt.Errorf("greeting %q: %v", line, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, r, nil
}

func reaches(from string, to *labPod) bool {
	c, _, err := dial(from, to)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// udpEcho reports whether a datagram from ns to addr comes back.
func udpEcho(ns, addr string) bool {
	var c net.Conn
	if err := netns.Do(ns, func() (err error) { c, err = net.Dial("udp4", addr); return err }); err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("q")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "q"
}

// expect waits until every pod pair, the node's reach to the pods and the
// pods' reach to the gateway's UDP ports are as want says, and returns how
// long that took.
func (l *lab) expect(what string, want func(from, to *labPod) bool, wantUDP func(from *labPod, port string) bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	var last []string
	for time.Since(start) < settle {
		last = l.mismatches(want, wantUDP)
		if len(last) == 0 {
			took := time.Since(start)
			l.t.Logf("%s: in effect after %v", what, took.Round(time.Millisecond))
			return took
		}
	}
	l.t.Fatalf("%s: after %v still:\n  %s\n%s", what, settle, strings.Join(last, "\n  "), l.nft())
	return 0
}

func (l *lab) mismatches(want func(from, to *labPod) bool, wantUDP func(from *labPod, port string) bool) []string {
	var (
		mu  sync.Mutex
		bad []string
		wg  sync.WaitGroup
	)
	check := func(desc string, wantOK bool, probe func() bool) {
		wg.Go(func() {
			if got := probe(); got != wantOK {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: reached %v, want %v", desc, got, wantOK))
				mu.Unlock()
			}
		})
	}
	for _, from := range l.pods {
		for _, to := range l.pods {
			if from != to {
				check(from.String()+" -> "+to.String(), want(from, to), func() bool { return reaches(from.netns, to) })
			}
		}
		for _, port := range []string{"53", "5353"} {
			check(from.String()+" -> node udp/"+port, wantUDP(from, port), func() bool { return udpEcho(from.netns, labGateway+":"+port) })
		}
	}
	// The node (kubelet probes) always reaches its pods.
	for _, to := range l.pods {
		check("node -> "+to.String(), true, func() bool { return reaches(l.node, to) })
	}
	wg.Wait()
	slices.Sort(bad)
	return bad
}

// nft lists the node's ruleset, for failure messages.
func (l *lab) nft() string {
	var out []byte
	_ = netns.Do(l.node, func() error {
		out, _ = exec.Command("nft", "list", "ruleset").CombinedOutput()
		return nil
	})
	return string(out)
}

func (l *lab) nftTable(name string) (string, error) {
	var out []byte
	err := netns.Do(l.node, func() (err error) {
		out, err = exec.Command("nft", "list", "table", "ip", name).CombinedOutput()
		return err
	})
	return string(out), err
}

// API objects.

func (l *lab) createNamespace(name string, lbls map[string]string) {
	l.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
	if _, err := l.client.CoreV1().Namespaces().Create(l.t.Context(), ns, metav1.CreateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) setNamespaceLabels(name string, lbls map[string]string) {
	l.t.Helper()
	ns, err := l.client.CoreV1().Namespaces().Get(l.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	ns.Labels = lbls
	ns.Labels[corev1.LabelMetadataName] = name
	if _, err := l.client.CoreV1().Namespaces().Update(l.t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

// createPod creates the Pod of p with its address in status, as the node
// agent would.
func (l *lab) createPod(p *labPod, lbls map[string]string) {
	l.t.Helper()
	ctx := l.t.Context()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns, Labels: lbls},
		Spec: corev1.PodSpec{NodeName: labNode, Containers: []corev1.Container{{Name: "app", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	pod, err := l.client.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = p.ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: p.ip}}
	if _, err := l.client.CoreV1().Pods(p.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) setPodLabels(p *labPod, lbls map[string]string) {
	l.t.Helper()
	pod, err := l.client.CoreV1().Pods(p.ns).Get(l.t.Context(), p.name, metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	pod.Labels = lbls
	if _, err := l.client.CoreV1().Pods(p.ns).Update(l.t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) createPolicy(np *networkingv1.NetworkPolicy) {
	l.t.Helper()
	if _, err := l.client.NetworkingV1().NetworkPolicies(np.Namespace).Create(l.t.Context(), np, metav1.CreateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) deletePolicies(ns string) {
	l.t.Helper()
	if err := l.client.NetworkingV1().NetworkPolicies(ns).DeleteCollection(l.t.Context(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) pod(name string) *labPod {
	for _, p := range l.pods {
		if p.name == name {
			return p
		}
	}
	panic("no pod " + name)
}

// TestLab runs the workshop's NetworkPolicy lab against real kernels:
// everything reaches everything; deny-all in a namespace blocks; allowing
// zone=prod pods lets only those in; a namespaceSelector by label lets a
// namespace in; egress deny except DNS; removing the policies opens
// everything again. The Enforcer's table goes away with it, and the bridge's
// table is left as it was.
func TestLab(t *testing.T) {
	l := newLab(t)
	env := testenv.Start(t, testenv.WithoutControllers)
	l.client = env.Client

	labels := map[string]map[string]string{ // the current pod labels
		"frontend": {"app": "frontend", "zone": "prod"},
		"staging":  {"app": "frontend", "zone": "staging"},
		"db":       {"app": "db"},
		"client":   {"app": "client", "zone": "prod"},
		"tools":    {"app": "tools"},
	}
	nsLabels := map[string]map[string]string{"shop": {"team": "shop"}, "dev": {"team": "dev"}}
	l.createNamespace("shop", nsLabels["shop"])
	l.createNamespace("dev", nsLabels["dev"])
	for _, p := range l.pods {
		l.createPod(p, labels[p.name])
	}

	bridgeTable, err := l.nftTable("skiff-node")
	if err != nil {
		t.Fatalf("bridge table: %v\n%s", err, bridgeTable)
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	e := policy.New(env.Client, factory, testenv.Logger(t), policy.Options{NodeName: labNode,
		NodeDNS: []netip.Addr{netip.MustParseAddr(labGateway)}, NetNS: l.node})
	stop := testenv.Run(t, "enforcer", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		return e.Run(ctx)
	})
	select {
	case <-e.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("enforcer not ready after 30s")
	}

	all := func(_, _ *labPod) bool { return true }
	allUDP := func(*labPod, string) bool { return true }
	l.expect("no policies: all reach each other", all, allUDP)

	// 1. Deny all ingress in shop.
	l.createPolicy(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: "shop"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	})
	l.expect("deny-all in shop", func(_, to *labPod) bool { return to.ns != "shop" }, allUDP)

	// 2. Allow from zone=prod pods (of shop).
	l.createPolicy(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-prod", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "prod"}}}},
		}}},
	})
	prod := func(from, to *labPod) bool {
		return to.ns != "shop" || from.ns == "shop" && labels[from.name]["zone"] == "prod"
	}
	l.expect("allow from zone=prod", prod, allUDP)
	// A pod that gets the label gets in.
	labels["staging"] = map[string]string{"app": "frontend", "zone": "prod"}
	l.setPodLabels(l.pod("staging"), labels["staging"])
	l.expect("staging relabelled zone=prod", prod, allUDP)

	// 3. Allow from namespaces labelled team=dev.
	l.createPolicy(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-dev", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "dev"}}}},
		}}},
	})
	prodOrDev := func(from, to *labPod) bool { return prod(from, to) || nsLabels[from.ns]["team"] == "dev" }
	l.expect("allow from namespaces team=dev", prodOrDev, allUDP)
	nsLabels["dev"] = map[string]string{"team": "qa"}
	l.setNamespaceLabels("dev", maps.Clone(nsLabels["dev"]))
	l.expect("dev relabelled team=qa", prodOrDev, allUDP)
	nsLabels["dev"] = map[string]string{"team": "dev"}
	l.setNamespaceLabels("dev", maps.Clone(nsLabels["dev"]))
	l.expect("dev labelled team=dev again", prodOrDev, allUDP)

	// A connection open before the next policy keeps flowing after it.
	held, heldR, err := dial(l.pod("client").netns, l.pod("frontend"))
	if err != nil {
		t.Fatalf("client -> frontend: %v", err)
	}
	defer held.Close()

	// 4. Egress deny except DNS in dev.
	protoUDP, protoTCP := corev1.ProtocolUDP, corev1.ProtocolTCP
	port53 := func(p *corev1.Protocol) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: p, Port: ptr.To(intstr.FromInt32(53))}
	}
	l.createPolicy(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-only", Namespace: "dev"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
				Ports: []networkingv1.NetworkPolicyPort{port53(&protoUDP), port53(&protoTCP)},
			}},
		},
	})
	l.expect("egress deny except DNS in dev",
		func(from, to *labPod) bool { return from.ns != "dev" && prodOrDev(from, to) },
		func(from *labPod, port string) bool { return from.ns != "dev" || port == "53" })
	if err := echo(held, heldR, "still there"); err != nil {
		t.Errorf("connection opened before the egress policy: %v", err)
	}

	// 5. Remove the policies.
	l.deletePolicies("shop")
	l.deletePolicies("dev")
	l.expect("policies removed: all reach again", all, allUDP)

	stop()
	if out, err := l.nftTable(policy.DefaultTable); err == nil {
		t.Errorf("table %s still there after Run returned:\n%s", policy.DefaultTable, out)
	}
	if after, err := l.nftTable("skiff-node"); err != nil || after != bridgeTable {
		t.Errorf("the bridge's table changed (err %v):\nbefore:\n%s\nafter:\n%s", err, bridgeTable, after)
	}
}

func echo(c net.Conn, r *bufio.Reader, msg string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != msg {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}
