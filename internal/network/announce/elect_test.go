package announce

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func testNode(name string, ready bool, labels map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func TestOwner(t *testing.T) {
	cluster := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	local := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal}}
	endpointsOn := func(eps ...discoveryv1.Endpoint) []*discoveryv1.EndpointSlice {
		return []*discoveryv1.EndpointSlice{{Endpoints: eps}}
	}
	on := func(node string, ready, serving *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving}}
	}
	exclude := map[string]string{corev1.LabelNodeExcludeBalancers: ""}
	tests := []struct {
		name   string
		svc    *corev1.Service
		nodes  []*corev1.Node
		slices []*discoveryv1.EndpointSlice
		want   string
	}{
		{name: "single node", svc: cluster, nodes: []*corev1.Node{testNode("node-a", true, nil)}, want: "node-a"},
		{name: "first by name", svc: cluster, nodes: []*corev1.Node{testNode("node-b", true, nil), testNode("node-a", true, nil)}, want: "node-a"},
		{name: "not ready skipped", svc: cluster, nodes: []*corev1.Node{testNode("node-a", false, nil), testNode("node-b", true, nil)}, want: "node-b"},
		{name: "excluded skipped", svc: cluster, nodes: []*corev1.Node{testNode("node-a", true, exclude), testNode("node-b", true, nil)}, want: "node-b"},
		{name: "none ready", svc: cluster, nodes: []*corev1.Node{testNode("node-a", false, nil)}, want: ""},
		{name: "local: only nodes with endpoints", svc: local,
			nodes:  []*corev1.Node{testNode("node-a", true, nil), testNode("node-b", true, nil)},
			slices: endpointsOn(on("node-b", nil, nil)), want: "node-b"},
		{name: "local: a terminating but serving endpoint counts", svc: local,
			nodes:  []*corev1.Node{testNode("node-a", true, nil), testNode("node-b", true, nil)},
			slices: endpointsOn(on("node-a", ptr.To(false), ptr.To(false)), on("node-b", ptr.To(false), ptr.To(true))), want: "node-b"},
		{name: "local: no endpoints, nobody", svc: local, nodes: []*corev1.Node{testNode("node-a", true, nil)}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := owner(tc.svc, tc.nodes, tc.slices); got != tc.want {
				t.Errorf("owner %q, want %q", got, tc.want)
			}
		})
	}
}

func TestARPFrames(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	peer := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	req := arpPacket{ethDst: broadcast, op: arpRequest, senderMAC: peer, senderIP: netip.MustParseAddr("203.0.113.2"),
		targetMAC: make(net.HardwareAddr, 6), targetIP: netip.MustParseAddr("203.0.113.100")}
	frame := req.frame(peer)
	if len(frame) != minFrameLen {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	got, ok := parseARP(frame)
	if !ok || got.op != arpRequest || got.senderIP != req.senderIP || got.targetIP != req.targetIP || !bytes.Equal(got.senderMAC, peer) {
		t.Fatalf("round trip: %+v", got)
	}
	rep := replyTo(got, got.targetIP, mac)
	if rep.op != arpReply || !bytes.Equal(rep.ethDst, peer) || !bytes.Equal(rep.targetMAC, peer) ||
		rep.senderIP != req.targetIP || rep.targetIP != req.senderIP || !bytes.Equal(rep.senderMAC, mac) {
		t.Errorf("reply %+v", rep)
	}
	for _, g := range gratuitous(req.targetIP, mac) {
		if g.senderIP != g.targetIP || !bytes.Equal(g.ethDst, broadcast) || !bytes.Equal(g.senderMAC, mac) {
			t.Errorf("gratuitous %+v", g)
		}
	}
	// Not ARP, truncated, other protocols: ignored.
	ipv4 := bytes.Clone(frame)
	ipv4[12], ipv4[13] = 0x08, 0x00
	ipv6arp := bytes.Clone(frame)
	ipv6arp[ethHeaderLen+2], ipv6arp[ethHeaderLen+3] = 0x86, 0xdd
	for name, f := range map[string][]byte{"ipv4": ipv4, "short": frame[:30], "other protocol": ipv6arp, "empty": nil} {
		if _, ok := parseARP(f); ok {
			t.Errorf("%s frame parsed as ARP", name)
		}
	}
}

func FuzzParseARP(f *testing.F) {
	f.Add(arpPacket{ethDst: broadcast, op: arpRequest, senderMAC: broadcast, senderIP: netip.MustParseAddr("10.0.0.1"),
		targetMAC: broadcast, targetIP: netip.MustParseAddr("10.0.0.2")}.frame(broadcast))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, ok := parseARP(frame)
		if ok {
			if _, ok := parseARP(p.frame(p.senderMAC)); !ok {
				t.Fatal("a parsed packet does not parse again")
			}
		}
	})
}
