package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/netns"
)

// -p 8080:80 and friends: reachable from the host (uplink address and
// 127.0.0.1), from the internet, from other containers and from the
// container itself (hairpin); UDP too; a 127.0.0.1 mapping only on loopback.
func TestPublishedPorts(t *testing.T) {
	// With br_netfilter, bridged traffic passes the ip hooks too; hosts
	// differ, so both ways must work.
	for _, brnf := range []bool{true, false} {
		t.Run(fmt.Sprintf("br_netfilter=%v", brnf), func(t *testing.T) {
			e := newEnv(t)
			e.setBridgeNetfilter(brnf)
			testPublishedPorts(t, e)
		})
	}
}

func testPublishedPorts(t *testing.T, e *testEnv) {
	m := e.start(e.options())
	ctx := context.Background()

	web := e.container("web")
	serveTCP(t, web, "0.0.0.0:80")
	serveTCP(t, web, "0.0.0.0:81")
	serveUDP(t, web, "0.0.0.0:53")
	ep, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "web", NetNS: web, Ports: []PortMapping{
		{HostPort: 8080, ContainerPort: 80},
		{Proto: "UDP", HostPort: 5353, ContainerPort: 53},
		{HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 81},
		{ContainerPort: 80}, // allocated
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Ports) != 4 || ep.Ports[1].Proto != "udp" || ep.Ports[0].HostIP != "0.0.0.0" {
		t.Fatalf("ports %+v", ep.Ports)
	}
	eph := ep.Ports[3].HostPort
	if eph < ephemeralLow || eph > ephemeralHigh {
		t.Errorf("allocated host port %d, want one in %d-%d", eph, ephemeralLow, ephemeralHigh)
	}

	peer := e.container("peer") // same network
	if _, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "peer", NetNS: peer}); err != nil {
		t.Fatal(err)
	}
	n, err := m.CreateNetwork(ctx, NetworkConfig{Name: "other", DNS: true})
	if err != nil {
		t.Fatal(err)
	}
	stranger := e.container("stranger") // another network
	if _, err := m.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "stranger", NetNS: stranger}); err != nil {
		t.Fatal(err)
	}

	hostPort := func(p int) string { return net.JoinHostPort(hostUplinkIP, strconv.Itoa(p)) }
	mustReach(t, "host via uplink address", e.host, hostPort(8080), hostUplinkIP)
	mustReach(t, "host via 127.0.0.1", e.host, "127.0.0.1:8080", "")
	mustReach(t, "host via the gateway", e.host, "172.17.0.1:8080", "")
	mustReach(t, "internet via the host's address (client address kept)", e.inet, hostPort(8080), inetUplinkIP)
	mustReach(t, "container on the same bridge", peer, hostPort(8080), "172.17.0.1")
	mustReach(t, "the container itself (hairpin)", web, hostPort(8080), "172.17.0.1")
	mustReach(t, "container on another network", stranger, hostPort(8080), "")
	mustReach(t, "allocated port", e.inet, hostPort(int(eph)), inetUplinkIP)

	mustReach(t, "127.0.0.1 mapping from the host's loopback", e.host, "127.0.0.1:8081", "")
	mustNotReach(t, "127.0.0.1 mapping via the uplink address, from the host", e.host, hostPort(8081))
	mustNotReach(t, "127.0.0.1 mapping via the uplink address, from the internet", e.inet, hostPort(8081))
	mustNotReach(t, "unpublished container port from the internet", e.inet, ep.IP+":80")

	for _, from := range []struct{ name, ns, addr string }{
		{"host", e.host, hostPort(5353)},
		{"host loopback", e.host, "127.0.0.1:5353"},
		{"internet", e.inet, hostPort(5353)},
		{"peer", peer, hostPort(5353)},
	} {
		if got, err := whoamiUDP(from.ns, from.addr, dialTimeout); err != nil || got == "" {
			t.Errorf("udp from %s: %q, %v", from.name, got, err)
		}
	}

	// The host ports are taken on the host too.
	err = netns.Do(e.host, func() error {
		ln, err := net.Listen("tcp4", ":8080")
		if err == nil {
			ln.Close()
			return errors.New("a host process could listen on published port 8080")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// Detach takes the mappings away and frees the ports.
	if err := m.Detach(ctx, DefaultNetworkName, "web"); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, "after detach", e.inet, hostPort(8080))
	again := e.container("again")
	if _, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "again", NetNS: again,
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80}}}); err != nil {
		t.Errorf("port 8080 not free after detach: %v", err)
	}
	if t.Failed() {
		t.Log(e.nft())
	}
}

func TestPortClash(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()
	owner := e.container("owner")
	_, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "owner", NetNS: owner, Ports: []PortMapping{
		{HostPort: 8080, ContainerPort: 80},
		{HostIP: "127.0.0.1", HostPort: 9090, ContainerPort: 90},
		{Proto: "udp", HostPort: 7070, ContainerPort: 70},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		port PortMapping
		want error
	}{
		{"same port", PortMapping{HostPort: 8080, ContainerPort: 80}, errdefs.ErrConflict},
		{"specific address under a wildcard", PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80}, errdefs.ErrConflict},
		{"wildcard over a specific address", PortMapping{HostPort: 9090, ContainerPort: 80}, errdefs.ErrConflict},
		{"same udp port", PortMapping{Proto: "udp", HostPort: 7070, ContainerPort: 80}, errdefs.ErrConflict},
		{"other protocol is fine", PortMapping{Proto: "udp", HostPort: 8080, ContainerPort: 80}, nil},
		{"other address is fine", PortMapping{HostIP: hostUplinkIP, HostPort: 9090, ContainerPort: 80}, nil},
		{"address not on the host", PortMapping{HostIP: "198.51.100.1", HostPort: 9191, ContainerPort: 80}, errdefs.ErrInvalid},
		{"ipv6 host address", PortMapping{HostIP: "::1", HostPort: 9191, ContainerPort: 80}, errdefs.ErrInvalid},
		{"bad protocol", PortMapping{Proto: "sctp", HostPort: 9191, ContainerPort: 80}, errdefs.ErrInvalid},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("c%d", i)
			_, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: id, NetNS: e.container(id), Ports: []PortMapping{tt.port}})
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
			if got := m.Endpoints(DefaultNetworkName); len(got) != 1+countOK(tests[:i]) {
				t.Errorf("a failed attach left an endpoint: %+v", got)
			}
		})
	}
}

func countOK(tests []struct {
	name string
	port PortMapping
	want error
}) int {
	n := 0
	for _, tt := range tests {
		if tt.want == nil {
			n++
		}
	}
	return n
}

// A UDP client that kept sending to a host port before it was published
// reaches the container once it is (the stale conntrack entry is dropped).
func TestUDPMappingAfterStaleFlow(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	c := e.container("c")
	serveUDP(t, c, "0.0.0.0:53")

	var pc net.PacketConn
	if err := netns.Do(e.inet, func() (err error) { pc, err = net.ListenPacket("udp4", inetUplinkIP+":40000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := &net.UDPAddr{IP: net.ParseIP(hostUplinkIP), Port: 5353}
	send := func() (string, error) {
		if _, err := pc.WriteTo([]byte("hi"), to); err != nil {
			return "", err
		}
		_ = pc.SetReadDeadline(time.Now().Add(refuseWithin))
		buf := make([]byte, 100)
		n, _, err := pc.ReadFrom(buf)
		return string(buf[:n]), err
	}
	if got, err := send(); err == nil {
		t.Fatalf("answer %q before the port was published", got)
	}
	if _, err := m.Attach(context.Background(), AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "c", NetNS: c,
		Ports: []PortMapping{{Proto: "udp", HostPort: 5353, ContainerPort: 53}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := send(); err != nil || got != inetUplinkIP+"\n" {
		t.Errorf("after publishing: %q, %v; want the container's answer", got, err)
	}
}
