package bridge

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/network/netns"
)

// Two containers on a user network reach each other by IP, directly (no NAT),
// and by name through the network's DNS server, which forwards other names.
func TestUserNetwork(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()

	n, err := m.CreateNetwork(ctx, NetworkConfig{Name: "app", DNS: true})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet != "172.18.0.0/24" || n.Gateway != "172.18.0.1" || n.Bridge != "skiff-"+n.ID[:8] {
		t.Fatalf("network %+v: want 172.18.0.0/24, gateway .1, bridge skiff-<id>", n)
	}
	c1, c2 := e.container("c1"), e.container("c2")
	ep1, err := m.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c1", NetNS: c1, Names: []string{"web", "Web-Alias"}})
	if err != nil {
		t.Fatal(err)
	}
	ep2, err := m.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c2", NetNS: c2, Names: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep1.IP != "172.18.0.2" || ep1.PrefixLen != 24 || ep1.Gateway != "172.18.0.1" ||
		ep1.MAC != "02:42:ac:12:00:02" || ep1.IfName != "eth0" {
		t.Errorf("endpoint 1: %+v", ep1)
	}
	if ep2.IP != "172.18.0.3" {
		t.Errorf("endpoint 2: %+v", ep2)
	}
	if got := m.DNSServer(n.ID); got != "172.18.0.1" {
		t.Errorf("DNSServer = %q, want the gateway", got)
	}
	if got := m.Endpoints(n.ID); len(got) != 2 || got[0].ContainerID != "c1" || got[1].ContainerID != "c2" {
		t.Errorf("Endpoints = %+v", got)
	}

	for _, p := range []struct{ from, to string }{{c1, ep2.IP}, {c2, ep1.IP}, {c1, "172.18.0.1"}} {
		if err := ping(p.from, p.to); err != nil {
			t.Error(err)
		}
	}
	serveTCP(t, c2, "0.0.0.0:80")
	serveTCP(t, c1, "0.0.0.0:80")
	mustReach(t, "c1 to c2 by IP", c1, ep2.IP+":80", ep1.IP)
	mustReach(t, "c2 to c1 by IP", c2, ep1.IP+":80", ep2.IP)

	dnsIP := m.DNSServer(n.ID)
	names := []struct {
		ns, name string
		want     string
	}{
		{c1, "db", ep2.IP},
		{c1, "DB.", ep2.IP},
		{c2, "web", ep1.IP},
		{c2, "web-alias", ep1.IP},
		{c2, "WEB-ALIAS.", ep1.IP},
		{c1, "example.test", "198.51.100.7"}, // forwarded upstream
	}
	for _, tt := range names {
		got, err := lookup(tt.ns, dnsIP, tt.name)
		if err != nil || !slices.Equal(got, []string{tt.want}) {
			t.Errorf("lookup %q: %v, %v; want [%s]", tt.name, got, err, tt.want)
		}
	}
	for _, proto := range []string{"udp", "tcp"} {
		r, err := query(c1, proto, dnsIP, "db", dns.TypeAAAA)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("%s AAAA db: %v, %v; want NOERROR and no answer", proto, r, err)
		}
		r, err = query(c1, proto, dnsIP, "db", dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s A db: %v, %v", proto, r, err)
		}
		r, err = query(c1, proto, dnsIP, "nosuch.test", dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeNameError {
			t.Errorf("%s A nosuch.test: %v, %v; want the upstream's NXDOMAIN", proto, r, err)
		}
	}
	rev, _ := dns.ReverseAddr(ep2.IP)
	if r, err := query(c1, "udp", dnsIP, rev, dns.TypePTR); err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "db." {
		t.Errorf("PTR %s: %v, %v", rev, r, err)
	}

	// Containers reach the outside through the host (masqueraded).
	mustReach(t, "c1 to the internet", c1, inetServerIP+":80", hostUplinkIP)

	// Another network is isolated from this one, both ways.
	other := e.container("other")
	epo, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "other", NetNS: other})
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, other, "0.0.0.0:80")
	mustNotReach(t, "default bridge to user network", other, ep1.IP+":80")
	mustNotReach(t, "user network to default bridge", c1, epo.IP+":80")

	// A detached container's name is gone.
	if err := m.Detach(ctx, n.ID, "c2"); err != nil {
		t.Fatal(err)
	}
	if r, err := query(c1, "udp", dnsIP, "db", dns.TypeA); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("after detach, A db: %v, %v; want NXDOMAIN (forwarded)", r, err)
	}
	if t.Failed() {
		t.Log(e.nft())
	}
}

// The default bridge masquerades traffic to the outside behind the host's
// uplink address, and has no DNS server.
func TestDefaultBridgeEgress(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()

	var def Network
	for _, n := range m.Networks() {
		if n.Name == DefaultNetworkName {
			def = n
		}
	}
	if !def.Default || def.Subnet != "172.17.0.0/16" || def.Gateway != "172.17.0.1" || def.Bridge != "skiff0" || def.DNS {
		t.Fatalf("default network %+v", def)
	}
	if got := m.DNSServer(def.ID); got != "" {
		t.Errorf("DNSServer of the default bridge = %q, want none", got)
	}
	c := e.container("c")
	ep, err := m.Attach(ctx, AttachRequest{NetworkID: def.ID, ContainerID: "c", NetNS: c})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP != "172.17.0.2" || ep.PrefixLen != 16 {
		t.Errorf("endpoint %+v", ep)
	}
	// The container side: eth0 with the address, Docker's MAC, no IPv6, and
	// a default route via the gateway.
	err = netns.Do(c, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if got := l.Attrs().HardwareAddr.String(); got != "02:42:ac:11:00:02" || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("eth0: mac %s, flags %v", got, l.Attrs().Flags)
		}
		if v6, _ := netlink.AddrList(l, netlink.FAMILY_V6); len(v6) != 0 {
			t.Errorf("eth0 has IPv6 addresses: %v", v6)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if ones, _ := r.Dst.Mask.Size(); ones == 0 && r.Gw.String() == "172.17.0.1" {
				return nil
			}
		}
		return fmt.Errorf("no default route via 172.17.0.1: %v", routes)
	})
	if err != nil {
		t.Error(err)
	}
	mustReach(t, "container to the internet (tcp)", c, inetServerIP+":80", hostUplinkIP)
	if got, err := whoamiUDP(c, inetServerIP+":80", dialTimeout); err != nil || got != hostUplinkIP {
		t.Errorf("container to the internet (udp): %q, %v; want %s", got, err, hostUplinkIP)
	}
	if err := ping(c, inetServerIP); err != nil {
		t.Error(err)
	}
	if t.Failed() {
		t.Log(e.nft())
	}
}
