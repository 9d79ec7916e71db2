package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/netns"
)

// ruleComments lists the comments of every rule in Skiff's table, sorted.
func (e *testEnv) ruleComments() []string {
	e.t.Helper()
	f, err := os.Open(e.host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		e.t.Fatal(err)
	}
	table := &nftables.Table{Name: "skiff", Family: nftables.TableFamilyIPv4}
	var out []string
	for _, cs := range chains {
		rules, err := c.GetRules(table, &nftables.Chain{Name: cs.name, Table: table})
		if err != nil {
			e.t.Fatalf("list %s: %v", cs.name, err)
		}
		for _, r := range rules {
			out = append(out, cs.name+" "+ruleComment(r.UserData))
		}
	}
	slices.Sort(out)
	return out
}

func TestNetworkErrors(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()
	used, err := m.CreateNetwork(ctx, NetworkConfig{Name: "used", Subnet: "172.30.0.0/16", Bridge: "br-used"})
	if err != nil {
		t.Fatal(err)
	}
	c1 := e.container("c1")
	if _, err := m.Attach(ctx, AttachRequest{NetworkID: used.ID, ContainerID: "c1", NetNS: c1, IP: "172.30.0.10"}); err != nil {
		t.Fatal(err)
	}
	internal, err := m.CreateNetwork(ctx, NetworkConfig{Name: "internal", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := m.Network(DefaultNetworkName)

	create := []struct {
		name string
		cfg  NetworkConfig
		want error
	}{
		{"not a cidr", NetworkConfig{Name: "x", Subnet: "banana"}, errdefs.ErrInvalid},
		{"host bits set", NetworkConfig{Name: "x", Subnet: "172.20.0.5/16"}, errdefs.ErrInvalid},
		{"too small", NetworkConfig{Name: "x", Subnet: "172.20.0.0/31"}, errdefs.ErrInvalid},
		{"ipv6", NetworkConfig{Name: "x", Subnet: "fd00::/64"}, errdefs.ErrInvalid},
		{"gateway outside", NetworkConfig{Name: "x", Subnet: "172.20.0.0/24", Gateway: "172.21.0.1"}, errdefs.ErrInvalid},
		{"gateway is the network address", NetworkConfig{Name: "x", Subnet: "172.20.0.0/24", Gateway: "172.20.0.0"}, errdefs.ErrInvalid},
		{"gateway without subnet", NetworkConfig{Name: "x", Gateway: "172.20.0.1"}, errdefs.ErrInvalid},
		{"overlaps a user network", NetworkConfig{Name: "x", Subnet: "172.30.5.0/24"}, errdefs.ErrConflict},
		{"overlaps the default network", NetworkConfig{Name: "x", Subnet: "172.16.0.0/12"}, errdefs.ErrConflict},
		{"name taken", NetworkConfig{Name: "used"}, errdefs.ErrConflict},
		{"name of the default network", NetworkConfig{Name: "bridge"}, errdefs.ErrConflict},
		{"name reserved", NetworkConfig{Name: "host"}, errdefs.ErrConflict},
		{"bad name", NetworkConfig{Name: "-x"}, errdefs.ErrInvalid},
		{"no name", NetworkConfig{}, errdefs.ErrInvalid},
		{"bridge taken", NetworkConfig{Name: "x", Bridge: "br-used"}, errdefs.ErrConflict},
		{"bridge name too long", NetworkConfig{Name: "x", Bridge: "a-very-long-bridge"}, errdefs.ErrInvalid},
		{"id taken", NetworkConfig{ID: used.ID, Name: "x"}, errdefs.ErrAlreadyExists},
	}
	for _, tt := range create {
		t.Run("create/"+tt.name, func(t *testing.T) {
			_, err := m.CreateNetwork(ctx, tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}

	attach := []struct {
		name string
		req  AttachRequest
		want error
	}{
		{"unknown network", AttachRequest{NetworkID: "nope", ContainerID: "c2"}, errdefs.ErrNotFound},
		{"attached twice", AttachRequest{NetworkID: used.ID, ContainerID: "c1", NetNS: c1}, errdefs.ErrConflict},
		{"address in use", AttachRequest{NetworkID: used.ID, ContainerID: "c2", IP: "172.30.0.10"}, errdefs.ErrConflict},
		{"address is the gateway", AttachRequest{NetworkID: used.ID, ContainerID: "c2", IP: "172.30.0.1"}, errdefs.ErrConflict},
		{"address outside", AttachRequest{NetworkID: used.ID, ContainerID: "c2", IP: "10.0.0.2"}, errdefs.ErrInvalid},
		{"no namespace", AttachRequest{NetworkID: used.ID, ContainerID: "c2", NetNS: "/nonexistent/ns"}, errdefs.ErrNotFound},
		{"not a namespace", AttachRequest{NetworkID: used.ID, ContainerID: "c2", NetNS: "/proc/self/status"}, errdefs.ErrInvalid},
		{"interface name too long", AttachRequest{NetworkID: used.ID, ContainerID: "c2", IfName: "eth0-far-too-long"}, errdefs.ErrInvalid},
		{"same interface name twice", AttachRequest{NetworkID: def.ID, ContainerID: "c1", NetNS: c1}, errdefs.ErrConflict},
		{"bad container id", AttachRequest{NetworkID: used.ID, ContainerID: "a/b"}, errdefs.ErrInvalid},
		{"ports on an internal network", AttachRequest{NetworkID: internal.ID, ContainerID: "c2",
			Ports: []PortMapping{{HostPort: 80, ContainerPort: 80}}}, errdefs.ErrInvalid},
		{"container port 0", AttachRequest{NetworkID: used.ID, ContainerID: "c2",
			Ports: []PortMapping{{HostPort: 80}}}, errdefs.ErrInvalid},
		{"same mapping twice", AttachRequest{NetworkID: used.ID, ContainerID: "c2",
			Ports: []PortMapping{{HostPort: 80, ContainerPort: 80}, {HostPort: 80, ContainerPort: 81}}}, errdefs.ErrInvalid},
	}
	for _, tt := range attach {
		t.Run("attach/"+tt.name, func(t *testing.T) {
			if tt.req.NetNS == "" {
				tt.req.NetNS = e.container(strings.ReplaceAll(tt.name, " ", "-"))
			}
			_, err := m.Attach(ctx, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}

	remove := []struct {
		name string
		id   string
		want error
	}{
		{"in use", used.ID, errdefs.ErrConflict},
		{"predefined", def.ID, errdefs.ErrConflict},
		{"unknown", "nope", errdefs.ErrNotFound},
	}
	for _, tt := range remove {
		t.Run("remove/"+tt.name, func(t *testing.T) {
			err := m.RemoveNetwork(ctx, tt.id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
	if got := m.Endpoints(used.ID); len(got) != 1 {
		t.Errorf("failed attaches left endpoints: %+v", got)
	}
	if got := m.Endpoints(def.ID); len(got) != 0 {
		t.Errorf("failed attaches left endpoints: %+v", got)
	}
}

// After Detach and RemoveNetwork, nothing of them is left: no rules, no
// veth, no bridge, no DNS server, no port reservation.
func TestNothingLeftBehind(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()
	baseline := e.ruleComments()
	linksBefore := e.hostLinks()

	n, err := m.CreateNetwork(ctx, NetworkConfig{Name: "temp", DNS: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		for _, netID := range []string{n.ID, DefaultNetworkName} {
			ns := e.dir + "/ns/" + id
			if _, err := os.Stat(ns); err != nil {
				ns = e.container(id)
			}
			ifName := "eth0"
			if netID == DefaultNetworkName {
				ifName = "eth1"
			}
			port := uint16(8000)
			if id == "b" {
				port = 8001
			}
			if netID == DefaultNetworkName {
				port += 100
			}
			_, err := m.Attach(ctx, AttachRequest{NetworkID: netID, ContainerID: id, NetNS: ns, IfName: ifName,
				Names: []string{id}, Ports: []PortMapping{{HostPort: port, ContainerPort: 80}, {Proto: "udp", ContainerPort: 53}}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := e.ruleComments(); len(got) <= len(baseline) {
		t.Fatalf("no rules added: %v", got)
	}
	for _, id := range []string{"a", "b"} {
		for _, netID := range []string{n.ID, DefaultNetworkName} {
			if err := m.Detach(ctx, netID, id); err != nil {
				t.Fatal(err)
			}
			if err := m.Detach(ctx, netID, id); err != nil {
				t.Fatalf("second detach: %v", err)
			}
		}
	}
	if err := m.RemoveNetwork(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.ruleComments(); !slices.Equal(got, baseline) {
		t.Errorf("rules left behind:\n got %q\nwant %q", got, baseline)
	}
	if got := e.hostLinks(); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces left behind: %v, before %v", got, linksBefore)
	}
	if _, err := m.Network(n.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("network still listed: %v", err)
	}
	if err := ping(e.dir+"/ns/a", "172.17.0.1"); err == nil {
		t.Error("a detached container still reaches the default gateway")
	}
	// The ports and the DNS address are free again.
	err = netns.Do(e.host, func() error {
		for _, p := range []string{":8000", ":8001", ":8100", ":8101"} {
			ln, err := netListen("tcp4", p)
			if err != nil {
				return err
			}
			ln.Close()
		}
		return nil
	})
	if err != nil {
		t.Errorf("host port still reserved: %v", err)
	}
	if t.Failed() {
		t.Log(e.nft())
	}
}

// A new Manager on the same state keeps addresses, rules, published ports and
// DNS names; containers keep working while no Manager runs.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	opts := e.options()
	ctx := context.Background()
	m1 := New(opts)
	if err := m1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m1.Close() }) // a no-op after the Close below
	n, err := m1.CreateNetwork(ctx, NetworkConfig{Name: "app", DNS: true})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := e.container("c1"), e.container("c2")
	ep1, err := m1.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c1", NetNS: c1, Names: []string{"web"},
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	ep2, err := m1.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c2", NetNS: c2, Names: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, c1, "0.0.0.0:80")
	serveTCP(t, c2, "0.0.0.0:80")
	rules := e.ruleComments()
	endpoints := m1.Endpoints(n.ID)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	mustReach(t, "published port with no manager running", e.inet, hostUplinkIP+":8080", inetUplinkIP)
	mustReach(t, "c1 to c2 with no manager running", c1, ep2.IP+":80", ep1.IP)

	// The second Manager takes the namespace of the thread that starts it.
	opts.NetNS = ""
	m2 := New(opts)
	if err := netns.Do(e.host, func() error { return m2.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close() })

	if got := m2.Endpoints(n.ID); !endpointsEqual(got, endpoints) {
		t.Errorf("endpoints after restart:\n got %+v\nwant %+v", got, endpoints)
	}
	if got := e.ruleComments(); !slices.Equal(got, rules) {
		t.Errorf("rules after restart:\n got %q\nwant %q", got, rules)
	}
	mustReach(t, "published port after restart", e.inet, hostUplinkIP+":8080", inetUplinkIP)
	mustReach(t, "c2 to c1 after restart", c2, ep1.IP+":80", ep2.IP)
	for _, q := range []struct{ ns, name, want string }{{c1, "db", ep2.IP}, {c2, "WEB", ep1.IP}} {
		if got, err := lookup(q.ns, m2.DNSServer(n.ID), q.name); err != nil || !slices.Equal(got, []string{q.want}) {
			t.Errorf("lookup %s after restart: %v, %v", q.name, got, err)
		}
	}
	if r, err := query(c1, "udp", m2.DNSServer(n.ID), "example.test", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Errorf("forwarding after restart: %v, %v", r, err)
	}
	// Allocations carry on from the state.
	c3 := e.container("c3")
	if _, err := m2.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c3", NetNS: c3,
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80}}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("port 8080 after restart: %v, want a conflict", err)
	}
	ep3, err := m2.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c3", NetNS: c3})
	if err != nil {
		t.Fatal(err)
	}
	if ep3.IP == ep1.IP || ep3.IP == ep2.IP {
		t.Errorf("c3 got %s, which is taken", ep3.IP)
	}
	if err := m2.Start(ctx); err != nil {
		t.Errorf("second Start: %v", err)
	}
	if t.Failed() {
		t.Log(e.nft())
	}
}

func endpointsEqual(a, b []Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y Endpoint) bool {
		return x.ContainerID == y.ContainerID && x.IP == y.IP && x.MAC == y.MAC && x.Gateway == y.Gateway &&
			x.PrefixLen == y.PrefixLen && x.IfName == y.IfName && slices.Equal(x.Names, y.Names) && slices.Equal(x.Ports, y.Ports)
	})
}

// An internal network: containers reach each other and resolve each other's
// names, but nothing outside (no route, no forwarding of other names).
func TestInternalNetwork(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()
	n, err := m.CreateNetwork(ctx, NetworkConfig{Name: "secret", Internal: true, DNS: true, Subnet: "10.50.0.0/24", Gateway: "10.50.0.254"})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := e.container("c1"), e.container("c2")
	ep1, err := m.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c1", NetNS: c1, Names: []string{"one"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep1.IP != "10.50.0.1" || ep1.Gateway != "10.50.0.254" {
		t.Errorf("endpoint %+v: want 10.50.0.1 with gateway .254", ep1)
	}
	ep2, err := m.Attach(ctx, AttachRequest{NetworkID: n.ID, ContainerID: "c2", NetNS: c2, Names: []string{"two"}})
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, c2, "0.0.0.0:80")
	mustReach(t, "c1 to c2", c1, ep2.IP+":80", ep1.IP)
	mustNotReach(t, "c1 to the internet", c1, inetServerIP+":80")
	// Not just for want of a route: the host drops it.
	err = netns.Do(c1, func() error {
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(n.Gateway)})
	})
	if err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, "c1 to the internet with a default route", c1, inetServerIP+":80")
	mustNotReach(t, "internet to c2", e.inet, ep2.IP+":80")
	if got, err := lookup(c1, n.Gateway, "two"); err != nil || !slices.Equal(got, []string{ep2.IP}) {
		t.Errorf("lookup two: %v, %v", got, err)
	}
	if r, err := query(c1, "udp", n.Gateway, "example.test", dns.TypeA); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("outside name on an internal network: %v, %v; want SERVFAIL", r, err)
	}
}

// Attach and Detach from many goroutines at once: distinct addresses and
// ports, and nothing left afterwards.
func TestConcurrentAttach(t *testing.T) {
	e := newEnv(t)
	m := e.start(e.options())
	ctx := context.Background()
	baseline := e.ruleComments()
	const n = 8
	nss := make([]string, n)
	for i := range n {
		nss[i] = e.container(fmt.Sprintf("c%d", i))
	}
	eps := make([]Endpoint, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		eps[i], errs[i] = m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: fmt.Sprintf("c%d", i),
			NetNS: nss[i], Ports: []PortMapping{{ContainerPort: 80}, {Proto: "udp", ContainerPort: 80}}})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]bool{}, map[string]bool{}
	for _, ep := range eps {
		ips[ep.IP] = true
		for _, p := range ep.Ports {
			ports[p.String()] = true
		}
	}
	if len(ips) != n || len(ports) != 2*n {
		t.Fatalf("addresses or ports handed out twice: %+v", eps)
	}
	parallel(n, func(i int) { errs[i] = m.Detach(ctx, DefaultNetworkName, fmt.Sprintf("c%d", i)) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := e.ruleComments(); !slices.Equal(got, baseline) {
		t.Errorf("rules left behind: %q", got)
	}
}

// parallel runs fn(0..n-1) at once and waits for all.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); fn(i) }()
	}
	wg.Wait()
}
