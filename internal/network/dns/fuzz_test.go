package dns

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzReply feeds arbitrary messages to the query path: nothing may
// panic, every reply must pack, and UDP replies must fit the client's
// buffer. The seeds run with the ordinary test suite; explore with
// go test -fuzz FuzzReply ./internal/network/dns.
func FuzzReply(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"hello.default.svc.cluster.local.", dns.TypeA, 0},
		{"_web._tcp.nginx.default.svc.cluster.local.", dns.TypeSRV, 1232},
		{"big.default.svc.cluster.local.", dns.TypeA, 0},
		{"ext.default.svc.cluster.local.", dns.TypeANY, 0},
		{"alias.default.svc.cluster.local.", dns.TypeAAAA, 4096},
		{"1-2-3-4.default.pod.cluster.local.", dns.TypeA, 0},
		{"fd00--1.x.pod.cluster.local.", dns.TypeAAAA, 0},
		{"20.0.96.10.in-addr.arpa.", dns.TypePTR, 0},
		{"cluster.local.", dns.TypeSOA, 0},
		{"www.example.org.", dns.TypeA, 0},
		{"a\\.b.svc.cluster.local.", dns.TypeA, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns > 0 {
			m.SetEdns0(q.edns, true)
		}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, true)
	}
	h := testHandler(f, fakeResolver{}, big(300))
	f.Fuzz(func(t *testing.T, wire []byte, udp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return
		}
		resp := h.reply(t.Context(), req, udp)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("reply to %v does not pack: %v", req, err)
		}
		limit := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), 4096))
		}
		if udp && len(out) > limit {
			t.Fatalf("UDP reply of %d bytes, client takes %d", len(out), limit)
		}
	})
}
