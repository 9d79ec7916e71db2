package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/network/netns"
)

// The test world: a "host" namespace where the Manager works, joined by a
// veth uplink to an "internet" namespace, and container namespaces. Nothing
// touches the machine's own network.
const (
	hostUplinkIP = "192.0.2.2"   // the host's address on the uplink
	inetUplinkIP = "192.0.2.1"   // the internet's side of the uplink
	inetServerIP = "203.0.113.1" // a server "out there", routed via the uplink
	upstreamDNS  = "203.0.113.1:53"
	dialTimeout  = 3 * time.Second
	refuseWithin = time.Second // how long a connection that must fail may take
)

type testEnv struct {
	t     testing.TB
	dir   string
	host  string // netns paths
	inet  string
	state string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and nftables rules")
	}
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, host: filepath.Join(dir, "ns", "host"), inet: filepath.Join(dir, "ns", "inet"),
		state: filepath.Join(dir, "state")}
	for _, ns := range []string{e.host, e.inet} {
		if err := netns.Create(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(ns) })
	}
	inetFile, err := os.Open(e.inet)
	if err != nil {
		t.Fatal(err)
	}
	defer inetFile.Close()
	err = netns.Do(e.host, func() error {
		up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1", PeerNamespace: netlink.NsFd(inetFile.Fd())}
		if err := netlink.LinkAdd(up); err != nil {
			return err
		}
		l, err := netlink.LinkByName("up0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, mustAddr(hostUplinkIP+"/24")); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		_, dst, _ := net.ParseCIDR("203.0.113.0/24")
		return netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP(inetUplinkIP)})
	})
	if err != nil {
		t.Fatalf("host uplink: %v", err)
	}
	err = netns.Do(e.inet, func() error {
		l, err := netlink.LinkByName("up1")
		if err != nil {
			return err
		}
		for _, a := range []string{inetUplinkIP + "/24", inetServerIP + "/32"} {
			if err := netlink.AddrAdd(l, mustAddr(a)); err != nil {
				return err
			}
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		// The internet routes everything to the host, so that tests show
		// that only published ports let it in, not missing routes.
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(hostUplinkIP)})
	})
	if err != nil {
		t.Fatalf("internet uplink: %v", err)
	}
	// The internet serves TCP and UDP "who am I" on port 80, and DNS.
	serveTCP(t, e.inet, inetServerIP+":80")
	serveUDP(t, e.inet, inetServerIP+":80")
	serveUpstreamDNS(t, e.inet, upstreamDNS)
	return e
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// options are the Manager options of the test world.
func (e *testEnv) options() Options {
	return Options{
		StateDir:        e.state,
		NetNS:           e.host,
		Upstreams:       []string{upstreamDNS},
		UpstreamTimeout: 2 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// start runs a Manager in the host namespace; it is closed at cleanup.
func (e *testEnv) start(opts Options) *Manager {
	e.t.Helper()
	m := New(opts)
	if err := m.Start(context.Background()); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// container makes a container network namespace.
func (e *testEnv) container(name string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, "ns", name)
	if err := netns.Create(p); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = netns.Delete(p) })
	return p
}

// nft prints Skiff's table, for failure messages.
func (e *testEnv) nft() string {
	var out []byte
	_ = netns.Do(e.host, func() error {
		out, _ = exec.Command("nft", "list", "table", "ip", "skiff").CombinedOutput()
		return nil
	})
	return string(out)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serveTCP listens in ns and tells each client the address it came from.
func serveTCP(t testing.TB, ns, addr string) {
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
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// serveUDP answers each datagram with the address it came from.
func serveUDP(t testing.TB, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.(*net.UDPAddr).IP.String()+"\n"), from)
		}
	}()
}

// serveUpstreamDNS is the internet's resolver: example.test is 198.51.100.7.
func serveUpstreamDNS(t testing.TB, ns, addr string) {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		resp := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		if strings.EqualFold(q.Name, "example.test.") && q.Qtype == dns.TypeA {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.ParseIP("198.51.100.7"),
			})
		} else {
			resp.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := netns.Do(ns, func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
}

// whoamiTCP connects from ns to addr and returns the address the server saw.
func whoamiTCP(ns, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := netns.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

// whoamiUDP sends a datagram from ns to addr and returns the answer.
func whoamiUDP(ns, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := netns.Do(ns, func() (err error) { c, err = net.Dial("udp4", addr); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("hi")); err != nil {
		return "", err
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("udp %s: %w", addr, err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// mustReach asserts that a TCP connection from ns to addr works and the
// server sees wantSrc ("" = don't care).
func mustReach(t *testing.T, what, ns, addr, wantSrc string) {
	t.Helper()
	got, err := whoamiTCP(ns, addr, dialTimeout)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if wantSrc != "" && got != wantSrc {
		t.Errorf("%s: server saw %s, want %s", what, got, wantSrc)
	}
}

func mustNotReach(t *testing.T, what, ns, addr string) {
	t.Helper()
	if got, err := whoamiTCP(ns, addr, refuseWithin); err == nil {
		t.Errorf("%s: connected (server saw %s), want no connection", what, got)
	}
}

// ping runs busybox ping inside ns.
func ping(ns, ip string) error {
	return netns.Do(ns, func() error {
		out, err := exec.Command("/usr/bin/busybox", "ping", "-c", "1", "-W", "2", ip).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %v: %s", ip, err, out)
		}
		return nil
	})
}

// resolver resolves through server from inside ns, as a container would.
func resolver(ns, server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, net.JoinHostPort(server, "53"))
			return err
		})
		return c, err
	}}
}

func lookup(ns, server, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := resolver(ns, server).LookupIP(ctx, "ip4", name)
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out, err
}

// query sends one DNS question from ns over proto ("udp" or "tcp").
func query(ns, proto, server, name string, qtype uint16) (*dns.Msg, error) {
	var c net.Conn
	if err := netns.Do(ns, func() (err error) {
		c, err = net.DialTimeout(proto, net.JoinHostPort(server, "53"), dialTimeout)
		return err
	}); err != nil {
		return nil, err
	}
	defer c.Close()
	cl := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	r, _, err := cl.ExchangeWithConn(new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype), &dns.Conn{Conn: c})
	return r, err
}

// hostLinks lists the interface names in the host namespace.
func (e *testEnv) hostLinks() []string {
	var names []string
	_ = netns.Do(e.host, func() error {
		links, err := netlink.LinkList()
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return nil
	})
	return names
}

var _ io.Writer = testWriter{}

func netListen(network, addr string) (net.Listener, error) { return net.Listen(network, addr) }

// setBridgeNetfilter turns br_netfilter's ip hooks on or off in the host
// namespace (a per-namespace sysctl); it skips when the kernel lacks it.
func (e *testEnv) setBridgeNetfilter(on bool) {
	e.t.Helper()
	const key = "net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat("/proc/sys/" + key); err != nil {
		if on {
			e.t.Skip("no br_netfilter in this kernel")
		}
		return
	}
	v := "0"
	if on {
		v = "1"
	}
	if err := netns.Do(e.host, func() error { return writeSysctl(key, v) }); err != nil {
		e.t.Fatal(err)
	}
}
