package dns

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a resolver on 127.0.0.1 (UDP and TCP, one port) that
// answers from fixed rules and counts what it is asked.
type fakeUpstream struct {
	addr      string
	udp, tcp  atomic.Int32
	mu        sync.Mutex
	lastQuery *dns.Msg
}

func startUpstream(t *testing.T, answer func(req *dns.Msg, tcp bool) *dns.Msg) *fakeUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{addr: pc.LocalAddr().String()}
	handler := func(tcp bool) dns.HandlerFunc {
		return func(w dns.ResponseWriter, req *dns.Msg) {
			if tcp {
				u.tcp.Add(1)
			} else {
				u.udp.Add(1)
			}
			u.mu.Lock()
			u.lastQuery = req.Copy()
			u.mu.Unlock()
			if m := answer(req, tcp); m != nil {
				_ = w.WriteMsg(m)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler(false)}, {Listener: ln, Handler: handler(true)}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

func (u *fakeUpstream) asked() int { return int(u.udp.Load() + u.tcp.Load()) }

// exampleAnswers is the fake internet: www.example.org A (TTL 60),
// big.example.org (truncated over UDP), gone.example.org NXDOMAIN with a
// SOA (minimum 30), nosoa.example.org NXDOMAIN without one.
func exampleAnswers(req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns: "ns.example.org.", Mbox: "h.example.org.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 30}
	switch strings.ToLower(q.Name) {
	case "www.example.org.":
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IP{203, 0, 113, 7}})
		} else {
			m.Ns = append(m.Ns, soa)
		}
	case "big.example.org.":
		if !tcp {
			m.Truncated = true
			return m
		}
		for i := range 50 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IP{203, 0, 113, byte(i)}})
		}
	case "gone.example.org.":
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, soa)
	case "nosoa.example.org.":
		m.Rcode = dns.RcodeNameError
	case "refused.example.org.":
		m.Rcode = dns.RcodeRefused
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, soa)
	}
	return m
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func query(t *testing.T, h *handler, name string, qtype uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	req.SetEdns0(4096, false)
	return h.reply(t.Context(), req, true)
}

func TestForwardAndCache(t *testing.T) {
	up := startUpstream(t, exampleAnswers)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	fwd := &forwarder{timeout: 2 * time.Second, cache: newCache(100, clock.now), loopID: []byte("12345678")}
	fwd.setUpstreams([]string{up.addr})
	h := testHandler(t, fwd)

	// A miss, then hits with the TTL counted down, then expiry.
	m := query(t, h, "www.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 60 || m.Authoritative {
		t.Fatalf("first answer %v", m)
	}
	if up.asked() != 1 {
		t.Fatalf("upstream asked %d times", up.asked())
	}
	up.mu.Lock()
	sent := up.lastQuery
	up.mu.Unlock()
	if !sent.RecursionDesired || sent.IsEdns0() == nil {
		t.Errorf("forwarded query %v: want RD and EDNS0", sent)
	}
	clock.advance(20 * time.Second)
	m = query(t, h, "WWW.example.org.", dns.TypeA)
	if up.asked() != 1 {
		t.Errorf("cache miss for the same name in other case: upstream asked %d times", up.asked())
	}
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 40 {
		t.Errorf("cached answer %v: want TTL 40", m.Answer)
	}
	clock.advance(41 * time.Second)
	query(t, h, "www.example.org.", dns.TypeA)
	if up.asked() != 2 {
		t.Errorf("after expiry upstream asked %d times, want 2", up.asked())
	}

	// Denials: kept for the SOA minimum; without SOA not kept.
	for range 2 {
		if m := query(t, h, "gone.example.org.", dns.TypeA); m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
			t.Fatalf("gone: %v", m)
		}
	}
	if up.asked() != 3 {
		t.Errorf("NXDOMAIN not cached: upstream asked %d times, want 3", up.asked())
	}
	clock.advance(31 * time.Second)
	query(t, h, "gone.example.org.", dns.TypeA)
	if up.asked() != 4 {
		t.Errorf("NXDOMAIN kept past the SOA minimum: upstream asked %d times, want 4", up.asked())
	}
	for range 2 {
		query(t, h, "nosoa.example.org.", dns.TypeA)
	}
	if up.asked() != 6 {
		t.Errorf("NXDOMAIN without SOA was cached: upstream asked %d times, want 6", up.asked())
	}
	// NODATA is kept too.
	query(t, h, "www.example.org.", dns.TypeAAAA)
	query(t, h, "www.example.org.", dns.TypeAAAA)
	if up.asked() != 7 {
		t.Errorf("NODATA not cached: upstream asked %d times, want 7", up.asked())
	}
}

func TestForwardTCPRetry(t *testing.T) {
	up := startUpstream(t, exampleAnswers)
	fwd := &forwarder{timeout: 2 * time.Second, loopID: []byte("12345678")}
	fwd.setUpstreams([]string{up.addr})
	h := testHandler(t, fwd)
	req := new(dns.Msg)
	req.SetQuestion("big.example.org.", dns.TypeA)
	m := h.reply(t.Context(), req, false)
	if len(m.Answer) != 50 {
		t.Fatalf("%d answers, want 50", len(m.Answer))
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Errorf("udp %d tcp %d, want one each", up.udp.Load(), up.tcp.Load())
	}
	// Too big for the client's 512 bytes over UDP: truncated for it.
	m = h.reply(t.Context(), req, true)
	if !m.Truncated {
		t.Error("a 50-record answer over UDP to a 512-byte client was not truncated")
	}
}

func TestForwardFailover(t *testing.T) {
	// A socket that never answers, a resolver that refuses, then a good one.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	refusing := startUpstream(t, func(req *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		return m
	})
	good := startUpstream(t, exampleAnswers)
	fwd := &forwarder{timeout: time.Second, loopID: []byte("12345678")}
	fwd.setUpstreams([]string{silent.LocalAddr().String(), refusing.addr, good.addr})
	h := testHandler(t, fwd)
	if m := query(t, h, "www.example.org.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("answer %v", m)
	}
	// The good one is asked first from now on.
	query(t, h, "www.example.org.", dns.TypeA)
	if refusing.asked() != 1 || good.asked() != 2 {
		t.Errorf("refusing asked %d, good %d; want 1, 2", refusing.asked(), good.asked())
	}
	// All failing: SERVFAIL.
	fwd.setUpstreams([]string{silent.LocalAddr().String(), refusing.addr})
	if m := query(t, h, "www.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// And an ExternalName whose target cannot be resolved.
	if m := query(t, h, "ext.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 1 {
		t.Errorf("ExternalName with failing upstreams: %v", m)
	}
}

// TestLoopGuard forwards to itself: the query comes back with the
// server's own marker, is answered SERVFAIL at once, and goes no further.
func TestLoopGuard(t *testing.T) {
	var loops atomic.Int32
	fwd := &forwarder{timeout: 2 * time.Second, loopID: []byte("loop-id!")}
	h := testHandler(t, fwd)
	h.onLoop = func(string) { loops.Add(1) }
	self := startUpstream(t, func(req *dns.Msg, tcp bool) *dns.Msg { return h.reply(t.Context(), req, !tcp) })
	fwd.setUpstreams([]string{self.addr})
	start := time.Now()
	m := query(t, h, "www.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if loops.Load() != 1 || self.asked() != 1 {
		t.Errorf("loop seen %d times, server asked %d times; want 1, 1", loops.Load(), self.asked())
	}
	t.Logf("loop cut after %v", time.Since(start))
}

func TestCacheBound(t *testing.T) {
	c := newCache(2, time.Now)
	msg := func(ip byte) *dns.Msg {
		return &dns.Msg{Answer: []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IP{192, 0, 2, ip}}}}
	}
	k := func(n string) cacheKey {
		return keyOf(dns.Question{Name: n, Qtype: dns.TypeA, Qclass: dns.ClassINET}, false)
	}
	c.put(k("a."), msg(1))
	c.put(k("b."), msg(2))
	c.get(k("a.")) // a is now the most recent
	c.put(k("c."), msg(3))
	if c.len() != 2 {
		t.Fatalf("%d entries, want 2", c.len())
	}
	if _, ok := c.get(k("b.")); ok {
		t.Error("b (least recently used) was kept")
	}
	for _, n := range []string{"a.", "c."} {
		if _, ok := c.get(k(n)); !ok {
			t.Errorf("%s was dropped", n)
		}
	}
	// Zero TTLs and failures are not kept.
	zero := msg(4)
	zero.Answer[0].Header().Ttl = 0
	c.put(k("z."), zero)
	c.put(k("f."), &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}})
	for _, n := range []string{"z.", "f."} {
		if _, ok := c.get(k(n)); ok {
			t.Errorf("%s was cached", n)
		}
	}
}

func TestHostUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self := []string{"10.244.0.1:53"}
	tests := []struct {
		name, conf, stub string // stub "" = no stub file
		want             []string
		err              bool
	}{
		{name: "plain", conf: "search example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:1\n",
			want: []string{"192.0.2.53:53", "[2001:db8::53]:53"}},
		{name: "systemd stub uses the real servers", conf: "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
			stub: "nameserver 192.0.2.1\nnameserver 192.0.2.2\n", want: []string{"192.0.2.1:53", "192.0.2.2:53"}},
		{name: "loopback stub without systemd file is kept", conf: "nameserver 127.0.0.1\n", want: []string{"127.0.0.1:53"}},
		{name: "a loopback among others is not a stub", conf: "nameserver 127.0.0.1\nnameserver 192.0.2.9\n",
			stub: "nameserver 192.0.2.1\n", want: []string{"127.0.0.1:53", "192.0.2.9:53"}},
		{name: "never itself", conf: "nameserver 10.244.0.1\nnameserver 192.0.2.9\nnameserver 192.0.2.9\n", want: []string{"192.0.2.9:53"}},
		{name: "comments and junk", conf: "# nameserver 192.0.2.7\n; x\nnameserver\n\nnameserver 192.0.2.8\n", want: []string{"192.0.2.8:53"}},
		{name: "bad address", conf: "nameserver not-an-ip\n", err: true},
		{name: "none", conf: "search x\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := write("resolv.conf", tc.conf)
			stub := filepath.Join(dir, "absent")
			if tc.stub != "" {
				stub = write("stub.conf", tc.stub)
			}
			var selfAddrs []netip.AddrPort
			for _, s := range self {
				ap, _ := parseUpstream(s)
				selfAddrs = append(selfAddrs, ap)
			}
			got, err := hostUpstreams(conf, stub, selfAddrs)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := hostUpstreams(filepath.Join(dir, "missing"), "", nil); err == nil {
		t.Error("no error for a missing resolv.conf")
	}
}
