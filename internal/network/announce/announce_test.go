package announce_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"skiff.dev/skiff/internal/controllers/servicelb"
	"skiff.dev/skiff/internal/network/announce"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// The whole test binary, in-package tests included, runs in a network
// namespace of its own (the "node"); the client is another namespace on a
// veth pair.
func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// rig is a node namespace (this process's) with uplink0 203.0.113.1/24,
// linked to a client namespace with client0 203.0.113.2/24.
type rig struct {
	client    string // client namespace path
	uplinkMAC net.HardwareAddr
	clientMAC net.HardwareAddr
	capture   *announce.ARPCapture // on client0, in the client namespace
}

func setup(t *testing.T) *rig {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("needs its own network namespace (root and unshare)")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	r := &rig{client: filepath.Join(t.TempDir(), "client")}
	if err := netns.Create(r.client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(r.client) })
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "client0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	peer, err := netlink.LinkByName("client0")
	if err != nil {
		t.Fatal(err)
	}
	nsf, err := netns.Open(r.client)
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	if err := netlink.LinkSetNsFd(peer, int(nsf.Fd())); err != nil {
		t.Fatal(err)
	}
	up, err := netlink.LinkByName("uplink0")
	if err != nil {
		t.Fatal(err)
	}
	if err := configure(up, "203.0.113.1/24"); err != nil {
		t.Fatal(err)
	}
	r.uplinkMAC = up.Attrs().HardwareAddr
	err = netns.Do(r.client, func() error {
		l, err := netlink.LinkByName("client0")
		if err != nil {
			return err
		}
		r.clientMAC = l.Attrs().HardwareAddr
		if err := configure(l, "203.0.113.2/24"); err != nil {
			return err
		}
		r.capture, err = announce.OpenARPCapture("client0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.capture.Close() })
	return r
}

func configure(l netlink.Link, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// await reads ARP frames on the client side until match accepts one or
// the wait ends.
func (r *rig) await(wait time.Duration, match func(announce.ARPPacket) bool) (announce.ARPPacket, bool) {
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1514)
	for {
		if err := r.capture.SetReadDeadline(deadline); err != nil {
			return announce.ARPPacket{}, false
		}
		n, outgoing, err := r.capture.Read(buf)
		if err != nil {
			return announce.ARPPacket{}, false
		}
		if p, ok := announce.ParseARP(buf[:n]); ok && !outgoing && match(p) {
			return p, true
		}
	}
}

// ask sends who-has ip from the client and waits for an answer.
func (r *rig) ask(t *testing.T, ip string, wait time.Duration) (net.HardwareAddr, bool) {
	t.Helper()
	target := netip.MustParseAddr(ip)
	req := announce.ARPPacket{EthDst: announce.Broadcast, Op: announce.ARPRequest, SenderMAC: r.clientMAC, SenderIP: netip.MustParseAddr("203.0.113.2"),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: target}
	if err := r.capture.Send(req); err != nil {
		t.Fatal(err)
	}
	p, ok := r.await(wait, func(p announce.ARPPacket) bool {
		return p.Op == announce.ARPReply && p.SenderIP == target && bytes.Equal(p.TargetMAC, r.clientMAC)
	})
	return p.SenderMAC, ok
}

func (r *rig) awaitGratuitous(t *testing.T, ip string) {
	t.Helper()
	target := netip.MustParseAddr(ip)
	p, ok := r.await(10*time.Second, func(p announce.ARPPacket) bool { return p.SenderIP == target && p.TargetIP == target })
	if !ok {
		t.Fatalf("no gratuitous ARP for %s", ip)
	}
	if !bytes.Equal(p.SenderMAC, r.uplinkMAC) || !bytes.Equal(p.EthDst, announce.Broadcast) {
		t.Errorf("gratuitous ARP %+v: want sender %s, broadcast", p, r.uplinkMAC)
	}
}

func setNode(t *testing.T, c kubernetes.Interface, name string, ready bool) {
	t.Helper()
	ctx := t.Context()
	n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if n, err = c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAnnounce(t *testing.T) {
	r := setup(t)
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	setNode(t, c, "node-a", true)

	pool, err := servicelb.ParsePool([]string{"203.0.113.100-203.0.113.120"})
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(c, 0)
	a := announce.New(c, factory, testenv.Logger(t), announce.Options{NodeName: "node-a", Interface: "uplink0", Pool: pool})
	testenv.Run(t, "announcer", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return a.Run(ctx)
	})
	select {
	case <-a.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("announcer not ready")
	}

	// A LoadBalancer gets .100 (as the servicelb controller would write it).
	svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.100"}, {IP: "192.0.2.50"}}
	if _, err := c.CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.awaitGratuitous(t, "203.0.113.100")
	if got := a.Announced(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("203.0.113.100")}) {
		t.Errorf("announced %v (an address outside the pool must not be)", got)
	}

	// Who-has from the client: the node's MAC.
	if mac, ok := r.ask(t, "203.0.113.100", 5*time.Second); !ok || !bytes.Equal(mac, r.uplinkMAC) {
		t.Fatalf("who-has 203.0.113.100: %v %v, want %s", mac, ok, r.uplinkMAC)
	}
	// The client's own stack learns it too: connect, then its neighbour table.
	err = netns.Do(r.client, func() error {
		conn, err := net.DialTimeout("tcp", "203.0.113.100:80", 500*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		neigh, err := netlink.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, n := range neigh {
			if n.IP.Equal(net.ParseIP("203.0.113.100")) && bytes.Equal(n.HardwareAddr, r.uplinkMAC) {
				return nil
			}
		}
		return errors.New("no neighbour entry for 203.0.113.100 with the node's MAC")
	})
	if err != nil {
		t.Error(err)
	}
	// Nothing for an unassigned pool address.
	if mac, ok := r.ask(t, "203.0.113.101", 500*time.Millisecond); ok {
		t.Errorf("who-has 203.0.113.101 (unassigned) answered %s", mac)
	}

	// Another Ready node first by name takes over; back when it fails.
	setNode(t, c, "aaa", true)
	testenv.Eventually(t, "node-a stops announcing", func(context.Context) (bool, error) { return len(a.Announced()) == 0, nil })
	if mac, ok := r.ask(t, "203.0.113.100", 500*time.Millisecond); ok {
		t.Errorf("who-has 203.0.113.100 answered by %s while another node owns it", mac)
	}
	setNode(t, c, "aaa", false)
	r.awaitGratuitous(t, "203.0.113.100")
	if _, ok := r.ask(t, "203.0.113.100", 5*time.Second); !ok {
		t.Error("not answered after taking the address back")
	}
}

func TestNoPool(t *testing.T) {
	var none *servicelb.Pool // what ParsePool gives for no entries
	a := announce.New(nil, nil, testenv.Logger(t), announce.Options{NodeName: "node-a", Pool: none})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(a.Announced()) != 0 {
		t.Error("announced without a pool")
	}
}
