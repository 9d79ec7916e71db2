package bridge

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"skiff.dev/skiff/internal/network/netns"
)

// recorder is a dns.ResponseWriter that keeps the reply.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
}

func (r *recorder) LocalAddr() net.Addr         { return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr        { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

// silentUDP is an upstream that reads queries and never answers.
func silentUDP(t *testing.T, ns string) string {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() { _, _ = io.Copy(io.Discard, readerOf(pc)) }()
	return pc.LocalAddr().String()
}

type packetReader struct{ pc net.PacketConn }

func (r packetReader) Read(b []byte) (int, error) { n, _, err := r.pc.ReadFrom(b); return n, err }
func readerOf(pc net.PacketConn) io.Reader        { return packetReader{pc} }

// fixedUpstream answers every query with rcode (and, for NOERROR, one A record).
func fixedUpstream(t *testing.T, ns string, rcode int) string {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		resp := new(dns.Msg).SetRcode(r, rcode)
		if rcode == dns.RcodeSuccess {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A:   net.IPv4(198, 51, 100, 9),
			})
		}
		_ = w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNSServerAnswers(t *testing.T) {
	requireRoot(t)
	ns := filepath.Join(t.TempDir(), "host")
	if err := netns.Create(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(ns) })
	silent := silentUDP(t, ns)
	good := fixedUpstream(t, ns, dns.RcodeSuccess)
	failing := fixedUpstream(t, ns, dns.RcodeServerFailure)

	n := &network{ID: "n", Name: "n", Endpoints: map[string]*endpoint{
		"c1": {ContainerID: "c1", IP: "10.0.0.2", ip: netip.MustParseAddr("10.0.0.2"), Names: []string{"web", "alias"}},
		"c2": {ContainerID: "c2", IP: "10.0.0.3", ip: netip.MustParseAddr("10.0.0.3"), Names: []string{"alias"}},
	}}
	newServer := func(forward bool, upstreams ...string) *dnsServer {
		f, err := os.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		s := &dnsServer{
			addr: "10.0.0.1:53", network: "n", forward: forward, upstreams: upstreams,
			timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil)), ns: f,
		}
		s.zone.Store(buildZone(n))
		t.Cleanup(func() { f.Close() })
		return s
	}
	udp := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 4242}
	tcp := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 4242}

	tests := []struct {
		name      string
		server    *dnsServer
		remote    net.Addr
		qname     string
		qtype     uint16
		rcode     int
		answers   int
		firstAddr string // of an A answer, when there is exactly one
	}{
		{"a", newServer(true, good), udp, "web.", dns.TypeA, dns.RcodeSuccess, 1, "10.0.0.2"},
		{"upper case, no dot", newServer(true, good), udp, "WEB", dns.TypeA, dns.RcodeSuccess, 1, "10.0.0.2"},
		{"over tcp", newServer(true, good), tcp, "web.", dns.TypeA, dns.RcodeSuccess, 1, "10.0.0.2"},
		{"two containers, one alias", newServer(true, good), udp, "alias.", dns.TypeA, dns.RcodeSuccess, 2, ""},
		{"aaaa of a container", newServer(true, good), udp, "web.", dns.TypeAAAA, dns.RcodeSuccess, 0, ""},
		{"mx of a container", newServer(true, good), udp, "web.", dns.TypeMX, dns.RcodeSuccess, 0, ""},
		{"ptr", newServer(true, good), udp, "3.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, 1, ""},
		{"forwarded", newServer(true, good), udp, "example.org.", dns.TypeA, dns.RcodeSuccess, 1, "198.51.100.9"},
		{"forwarded over tcp to a udp-only upstream", newServer(true, good), tcp, "example.org.", dns.TypeA, dns.RcodeServerFailure, 0, ""},
		{"first upstream silent", newServer(true, silent, good), udp, "example.org.", dns.TypeA, dns.RcodeSuccess, 1, "198.51.100.9"},
		{"first upstream fails", newServer(true, failing, good), udp, "example.org.", dns.TypeA, dns.RcodeSuccess, 1, "198.51.100.9"},
		{"every upstream silent", newServer(true, silent, silent), udp, "example.org.", dns.TypeA, dns.RcodeServerFailure, 0, ""},
		{"no upstreams", newServer(true), udp, "example.org.", dns.TypeA, dns.RcodeServerFailure, 0, ""},
		{"internal network", newServer(false, good), udp, "example.org.", dns.TypeA, dns.RcodeServerFailure, 0, ""},
		{"unreachable upstream", newServer(true, "127.0.0.1:1"), udp, "example.org.", dns.TypeA, dns.RcodeServerFailure, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recorder{remote: tt.remote}
			q := new(dns.Msg).SetQuestion(tt.qname, tt.qtype)
			tt.server.ServeDNS(w, q)
			r := w.msg
			if r == nil {
				t.Fatal("no reply")
			}
			if r.Id != q.Id || !r.Response {
				t.Errorf("reply id %d response %v, want id %d", r.Id, r.Response, q.Id)
			}
			if r.Rcode != tt.rcode || len(r.Answer) != tt.answers {
				t.Fatalf("got %s with %d answers, want %s with %d:\n%v",
					dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode], tt.answers, r)
			}
			if tt.firstAddr != "" {
				if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != tt.firstAddr {
					t.Errorf("answer %v, want %s", r.Answer[0], tt.firstAddr)
				}
			}
		})
	}
}

func TestDNSServerRefusesOddQueries(t *testing.T) {
	s := &dnsServer{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.zone.Store(&zone{})
	q := new(dns.Msg).SetQuestion("a.", dns.TypeA)
	q.Question = append(q.Question, q.Question[0])
	w := &recorder{remote: &net.UDPAddr{}}
	s.ServeDNS(w, q)
	if w.msg == nil || w.msg.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("two questions: %v", w.msg)
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{"Web.": "web", "web": "web", " DB ": "db", ".": "", "a.b.": "a.b"} {
		if got := canonicalName(in); got != want {
			t.Errorf("canonicalName(%q) = %q, want %q", in, got, want)
		}
	}
}
