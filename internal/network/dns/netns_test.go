package dns_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"skiff.dev/skiff/internal/network/dns"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// As root the test binary runs in a network namespace of its own (with
// its loopback up, for the API server and the fake upstreams).
func TestMain(m *testing.M) {
	if runtimetest.InNetNS() {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			_ = netlink.LinkSetUp(lo)
		}
	}
	runtimetest.MainInNetNS(m)
}

// TestGatewayAddress starts the server on an address the node does not
// have yet (as on a node whose pods bridge comes up later), then gives
// the address to an interface and queries it from a "pod" namespace on
// the other end, over UDP and TCP.
func TestGatewayAddress(t *testing.T) {
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("needs its own network namespace (root and unshare)")
	}
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := t.Context()
	if _, err := env.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.77", Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	srv := dns.New(env.Client, factory, testenv.Logger(t), dns.Options{Listen: "10.99.0.1", ResolvConf: filepath.Join(t.TempDir(), "none")})
	testenv.Run(t, "dns server", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return srv.Run(ctx)
	})
	<-srv.Ready()

	pod := filepath.Join(t.TempDir(), "pod")
	if err := netns.Create(pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(pod) })
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gw0"}, PeerName: "eth0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	peer, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := netlink.LinkSetNsFd(peer, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	addrUp := func(name, cidr string) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(cidr)
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}
	if err := addrUp("gw0", "10.99.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := netns.Do(pod, func() error { return addrUp("eth0", "10.99.0.2/24") }); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		testenv.Eventually(t, "hello over "+network+" from the pod", func(ctx context.Context) (bool, error) {
			var m *mdns.Msg
			err := netns.Do(pod, func() error {
				var err error
				m, err = ask(ctx, "10.99.0.1:53", network, "hello.default.svc.cluster.local.", mdns.TypeA)
				return err
			})
			if err != nil {
				return false, err
			}
			return slices.Equal(answers(m), []string{"10.96.0.77"}), nil
		})
	}
	// Without upstreams, outside names fail fast.
	var m *mdns.Msg
	if err := netns.Do(pod, func() error {
		var err error
		m, err = ask(ctx, "10.99.0.1:53", "udp", "www.example.org.", mdns.TypeA)
		return err
	}); err != nil || m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("outside name without upstreams: %v %v", m, err)
	}
}
