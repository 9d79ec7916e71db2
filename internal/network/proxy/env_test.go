package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/network/proxy"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// The whole test binary runs in a network namespace of its own (as root),
// where the API server listens on loopback; every node, pod and client is
// a further namespace the test creates.
func TestMain(m *testing.M) {
	if runtimetest.InNetNS() {
		if err := loUp(); err != nil {
			fmt.Fprintln(os.Stderr, "loopback up:", err)
			os.Exit(1)
		}
	}
	runtimetest.MainInNetNS(m)
}

func loUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// The test node: the pods bridge (10.244.0.0/24, gateway 10.244.0.1) and
// an uplink to a client namespace (node 203.0.113.1, client 203.0.113.2;
// the client routes the load-balancer and external IPs via the node, as
// an ARP announcer or a router would make it).
const (
	nodeUplinkIP  = "203.0.113.1"
	clientIP      = "203.0.113.2"
	lbIP          = "203.0.113.100"
	externalIP    = "198.51.100.7"
	podGateway    = "10.244.0.1"
	clusterCIDR   = "10.244.0.0/16"
	httpPort      = 8080
	udpServerPort = 5353
	dialTimeout   = 2 * time.Second
	refuseWithin  = time.Second
)

type testNode struct {
	t      testing.TB
	dir    string
	node   string // netns paths
	client string
	pods   []*testPod
	env    *testenv.Env
}

type testPod struct {
	name string
	ns   string
	ip   string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and nftables tables")
	}
}

// newTestNode builds the node with pods pods serving HTTP on 8080 and UDP
// on 5353 ("<name> <client address>"), and an API server.
func newTestNode(t testing.TB, pods int) *testNode {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	n := &testNode{t: t, dir: dir, node: filepath.Join(dir, "ns", "node"), client: filepath.Join(dir, "ns", "client")}
	for _, p := range []string{n.node, n.client} {
		if err := netns.Create(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(p) })
	}
	n.uplink()

	bm := bridge.New(bridge.Options{
		StateDir: filepath.Join(dir, "bridge"), NetNS: n.node, Table: "skiff",
		Upstreams: []string{"127.0.0.1:53"}, Logger: testenv.Logger(t),
	})
	if err := bm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bm.Close() })
	// As podruntime makes it.
	pn, err := bm.CreateNetwork(context.Background(), bridge.NetworkConfig{
		Name: "pods", Subnet: "10.244.0.0/24", Bridge: "skiff-pods", NoHairpinNAT: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods {
		name := fmt.Sprintf("pod%d", i+1)
		p := &testPod{name: name, ns: filepath.Join(dir, "ns", name)}
		if err := netns.Create(p.ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(p.ns) })
		ep, err := bm.Attach(context.Background(), bridge.AttachRequest{NetworkID: pn.ID, ContainerID: name, NetNS: p.ns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bm.Detach(context.Background(), pn.ID, name) })
		p.ip = ep.IP
		serve(t, p)
		n.pods = append(n.pods, p)
	}
	n.env = testenv.Start(t, testenv.WithoutControllers)
	return n
}

// uplink joins node and client with a veth pair.
func (n *testNode) uplink() {
	t := n.t
	clientFile, err := os.Open(n.client)
	if err != nil {
		t.Fatal(err)
	}
	defer clientFile.Close()
	err = netns.Do(n.node, func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1", PeerNamespace: netlink.NsFd(clientFile.Fd())}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		l, err := netlink.LinkByName("up0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, mustAddr(nodeUplinkIP+"/24")); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		// The node's own traffic to ClusterIPs needs a route to start
		// from: the default route.
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(clientIP)})
	})
	if err != nil {
		t.Fatalf("node uplink: %v", err)
	}
	err = netns.Do(n.client, func() error {
		l, err := netlink.LinkByName("up1")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, mustAddr(clientIP+"/24")); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		for _, dst := range []string{lbIP + "/32", externalIP + "/32"} {
			_, d, _ := net.ParseCIDR(dst)
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: d, Gw: net.ParseIP(nodeUplinkIP)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("client uplink: %v", err)
	}
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// serve runs the pod's HTTP and UDP "who am I" servers; the sockets are
// made in the pod's namespace and served from anywhere.
func serve(t testing.TB, p *testPod) {
	var ln net.Listener
	var pc net.PacketConn
	err := netns.Do(p.ns, func() error {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", httpPort)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", udpServerPort))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", p.name, r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(p.name+" "+from.String()), from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
}

// dialIn dials from the namespace at ns.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(ns, func() error {
		d := net.Dialer{Timeout: dialTimeout}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// get does one HTTP GET on a new connection from the namespace at ns and
// returns the answer: "<pod> <client ip:port>".
func get(ns, addr string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		return dialIn(ctx, ns, network, a)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: dialTimeout}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// who returns which pod answered, and the client address it saw.
func who(answer string) (pod, from string) {
	pod, from, _ = strings.Cut(answer, " ")
	from, _, _ = strings.Cut(from, ":")
	return pod, from
}

// spread does n GETs and counts the answering pods.
func spread(t testing.TB, ns, addr string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		a, err := get(ns, addr)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", addr, filepath.Base(ns), err)
		}
		pod, _ := who(a)
		seen[pod]++
	}
	return seen
}

// udpAsk sends one datagram from ns (from a fresh port) and returns the
// answer.
func udpAsk(ns, addr string) (string, error) {
	c, err := dialIn(context.Background(), ns, "udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(dialTimeout))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// refused checks that a TCP connection to addr from ns is refused (a
// reset or ICMP unreachable: an active answer, so no hang; a dropped SYN
// would time out instead).
func refused(t testing.TB, ns, addr string) {
	t.Helper()
	c, err := dialIn(context.Background(), ns, "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("connection to %s from %s succeeded, want refused", addr, filepath.Base(ns))
	}
	if !isRefused(err) {
		t.Fatalf("connection to %s from %s: %v, want refused", addr, filepath.Base(ns), err)
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// startProxy runs a Proxy for the node (with its own informer factory)
// until the returned stop; it waits until the table is written.
func (n *testNode) startProxy(opts proxy.Options) (*proxy.Proxy, func()) {
	t := n.t
	t.Helper()
	opts.NodeName = proxy.NodeName
	opts.NetNS = n.node
	if opts.PodCIDR == "" {
		opts.PodCIDR = clusterCIDR
	}
	factory := informers.NewSharedInformerFactory(n.env.Client, 0)
	p := proxy.New(n.env.Client, factory, testenv.Logger(t), opts)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	stopRun := testenv.Run(t, "proxy", p.Run)
	stop := func() {
		stopRun()
		cancel()
		factory.Shutdown()
	}
	t.Cleanup(stop)
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("proxy not ready after 30s")
	}
	return p, stop
}

// Objects: Services are proxy.Service (fixtures_test.go), slices these.

// epSpec is an endpoint of a test slice: a pod, ready or not.
type epSpec struct {
	pod   *testPod
	ready bool
	node  string
}

func slice(svc, name string, portName string, proto corev1.Protocol, port int32, eps ...epSpec) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: proxy.Ptr(portName), Protocol: proxy.Ptr(proto), Port: proxy.Ptr(port)}},
	}
	for _, e := range eps {
		node := e.node
		if node == "" {
			node = proxy.NodeName
		}
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.pod.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: proxy.Ptr(e.ready)},
			NodeName:   proxy.Ptr(node),
		})
	}
	return sl
}

func ready(pods ...*testPod) []epSpec {
	var out []epSpec
	for _, p := range pods {
		out = append(out, epSpec{pod: p, ready: true})
	}
	return out
}
