package dns

import (
	"slices"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

func TestAnswers(t *testing.T) {
	fwd := fakeResolver{
		"www.example.org./A": {&dns.A{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{203, 0, 113, 7}}},
	}
	h := testHandler(t, fwd)
	const (
		NOERROR  = dns.RcodeSuccess
		NXDOMAIN = dns.RcodeNameError
	)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string // nil: not checked
		soa    bool     // the zone's SOA in authority
		notAA  bool     // not authoritative (forwarded)
	}{
		{name: "cluster IP", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"hello.default.svc.cluster.local. A 10.96.0.20"}},
		{name: "case kept, lookup folded", qname: "HeLLo.Default.SVC.cluster.LOCAL.", qtype: dns.TypeA,
			answer: []string{"HeLLo.Default.SVC.cluster.LOCAL. A 10.96.0.20"}},
		{name: "no AAAA for an IPv4 service is NODATA", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeAAAA, soa: true},
		{name: "TXT at a service is NODATA", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeTXT, soa: true},
		{name: "same name other namespace", qname: "hello.other.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"hello.other.svc.cluster.local. A 10.96.0.30"}},
		{name: "dual stack A", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"dual.default.svc.cluster.local. A 10.96.0.21"}},
		{name: "dual stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"dual.default.svc.cluster.local. AAAA fd00::21"}},
		{name: "SRV named port", qname: "_http._tcp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.hello.default.svc.cluster.local. SRV 0 100 80 hello.default.svc.cluster.local."},
			extra:  []string{"hello.default.svc.cluster.local. A 10.96.0.20"}},
		{name: "SRV udp port", qname: "_dns._udp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.hello.default.svc.cluster.local. SRV 0 100 53 hello.default.svc.cluster.local."}},
		{name: "SRV wrong protocol does not exist", qname: "_http._udp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: NXDOMAIN, soa: true},
		{name: "SRV unknown port does not exist", qname: "_nope._tcp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: NXDOMAIN, soa: true},
		{name: "protocol label is an empty non-terminal", qname: "_tcp.hello.default.svc.cluster.local.", qtype: dns.TypeSRV, soa: true},
		{name: "SRV at the service lists every port", qname: "hello.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"hello.default.svc.cluster.local. SRV 0 50 53 hello.default.svc.cluster.local.",
				"hello.default.svc.cluster.local. SRV 0 50 80 hello.default.svc.cluster.local.",
			}},
		{name: "endpoint of a cluster IP service", qname: "10-244-0-9.hello.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-244-0-9.hello.default.svc.cluster.local. A 10.244.0.9"}},
		{name: "headless: ready endpoints", qname: "nginx.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"nginx.default.svc.cluster.local. A 10.244.0.5", "nginx.default.svc.cluster.local. A 10.244.0.6"}},
		{name: "statefulset pod name", qname: "web-0.nginx.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web-0.nginx.default.svc.cluster.local. A 10.244.0.5"}},
		{name: "not ready pod has no name", qname: "web-2.nginx.default.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "headless SRV per endpoint", qname: "_web._tcp.nginx.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_web._tcp.nginx.default.svc.cluster.local. SRV 0 50 80 web-0.nginx.default.svc.cluster.local.",
				"_web._tcp.nginx.default.svc.cluster.local. SRV 0 50 80 web-1.nginx.default.svc.cluster.local.",
			},
			extra: []string{"web-0.nginx.default.svc.cluster.local. A 10.244.0.5", "web-1.nginx.default.svc.cluster.local. A 10.244.0.6"}},
		{name: "headless IPv4", qname: "anon.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"anon.default.svc.cluster.local. A 10.244.0.8"}},
		{name: "headless IPv6", qname: "anon.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"anon.default.svc.cluster.local. AAAA fd00:10:244::8"}},
		{name: "endpoint named by its address", qname: "10-244-0-8.anon.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-244-0-8.anon.default.svc.cluster.local. A 10.244.0.8"}},
		{name: "endpoint named by its IPv6 address", qname: "fd00-10-244--8.anon.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00-10-244--8.anon.default.svc.cluster.local. AAAA fd00:10:244::8"}},
		{name: "headless without endpoints is NODATA", qname: "empty.default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "service without an address yet is NODATA", qname: "pending.default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "ExternalName CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. CNAME www.example.org."}},
		{name: "ExternalName followed outside", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. CNAME www.example.org.", "www.example.org. A 203.0.113.7"}},
		{name: "ExternalName followed inside", qname: "alias.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"alias.default.svc.cluster.local. CNAME hello.default.svc.cluster.local.", "hello.default.svc.cluster.local. A 10.96.0.20"}},
		{name: "ExternalName to a missing name", qname: "nowhere.default.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true,
			answer: []string{"nowhere.default.svc.cluster.local. CNAME missing.default.svc.cluster.local."}},
		{name: "missing service", qname: "missing.default.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "missing namespace", qname: "hello.nons.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "namespace is an empty non-terminal", qname: "default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "namespace without services", qname: "nons.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "svc label", qname: "svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "apex A is NODATA", qname: "cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "apex SOA", qname: "cluster.local.", qtype: dns.TypeSOA,
			answer: []string{"cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. " + serialString(h) + " 7200 1800 86400 5"}},
		{name: "apex NS", qname: "cluster.local.", qtype: dns.TypeNS, answer: []string{"cluster.local. NS ns.dns.cluster.local."}},
		{name: "not a service or pod name", qname: "foo.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "too deep", qname: "a.b.hello.default.svc.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "dns-version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. TXT "1.1.0"`}},
		{name: "pod A", qname: "10-244-0-99.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-244-0-99.default.pod.cluster.local. A 10.244.0.99"}},
		{name: "pod AAAA of an IPv4 pod is NODATA", qname: "10-244-0-99.default.pod.cluster.local.", qtype: dns.TypeAAAA, soa: true},
		{name: "IPv6 pod", qname: "fd00--1.default.pod.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00--1.default.pod.cluster.local. AAAA fd00::1"}},
		{name: "pod label that is no address", qname: "10-244-0.default.pod.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "pod namespace is NODATA", qname: "default.pod.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "pod name too deep", qname: "x.10-244-0-99.default.pod.cluster.local.", qtype: dns.TypeA, rcode: NXDOMAIN, soa: true},
		{name: "PTR of a cluster IP", qname: "20.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.96.10.in-addr.arpa. PTR hello.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 cluster IP", qname: mustReverse("fd00::21"), qtype: dns.TypePTR,
			answer: []string{mustReverse("fd00::21") + " PTR dual.default.svc.cluster.local."}},
		{name: "PTR of a headless endpoint", qname: "5.0.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.244.10.in-addr.arpa. PTR web-0.nginx.default.svc.cluster.local."}},
		{name: "PTR of an unnamed headless endpoint", qname: "8.0.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"8.0.244.10.in-addr.arpa. PTR 10-244-0-8.anon.default.svc.cluster.local."}},
		{name: "PTR of other addresses is forwarded", qname: "9.0.244.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: NXDOMAIN, notAA: true},
		{name: "outside name forwarded", qname: "www.example.org.", qtype: dns.TypeA, notAA: true,
			answer: []string{"www.example.org. A 203.0.113.7"}},
		{name: "outside missing name", qname: "nope.example.", qtype: dns.TypeA, rcode: NXDOMAIN, notAA: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			resp := h.reply(t.Context(), req, true)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := rrStrings(resp.Answer); !slices.Equal(got, sorted(tc.answer)) {
				t.Errorf("answer:\n got %q\nwant %q", got, sorted(tc.answer))
			}
			if tc.extra != nil {
				if got := rrStrings(resp.Extra); !slices.Equal(got, sorted(tc.extra)) {
					t.Errorf("extra:\n got %q\nwant %q", got, sorted(tc.extra))
				}
			}
			hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA && resp.Ns[0].Header().Name == "cluster.local."
			if hasSOA != tc.soa {
				t.Errorf("authority %q, want SOA: %v", rrStrings(resp.Ns), tc.soa)
			}
			if resp.Authoritative == tc.notAA {
				t.Errorf("authoritative %v", resp.Authoritative)
			}
			if resp.Id != req.Id || !resp.Response || !resp.RecursionAvailable || !resp.RecursionDesired {
				t.Errorf("header %+v", resp.MsgHdr)
			}
			if len(resp.Question) != 1 || resp.Question[0] != req.Question[0] {
				t.Errorf("question %v", resp.Question)
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("pack: %v", err)
			}
		})
	}
}

func serialString(h *handler) string {
	return strconv.FormatUint(uint64(h.ix.serial.Load()), 10)
}

func mustReverse(ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestMessageHandling(t *testing.T) {
	h := testHandler(t, nil)
	tests := []struct {
		name  string
		req   func() *dns.Msg
		rcode int
	}{
		{name: "other class in the zone is refused", rcode: dns.RcodeRefused, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("hello.default.svc.cluster.local.", dns.TypeA)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}},
		{name: "zone transfer refused", rcode: dns.RcodeRefused, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetAxfr("cluster.local.")
			return m
		}},
		{name: "not a query", rcode: dns.RcodeNotImplemented, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetNotify("cluster.local.")
			return m
		}},
		{name: "two questions", rcode: dns.RcodeFormatError, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("hello.default.svc.cluster.local.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}},
		{name: "EDNS version 1", rcode: dns.RcodeBadVers, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("hello.default.svc.cluster.local.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}},
		{name: "query that came back (loop)", rcode: dns.RcodeServerFailure, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			m.SetEdns0(1232, false)
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: loopOption, Data: []byte("loop-id!")})
			return m
		}},
		{name: "outside name without upstreams", rcode: dns.RcodeServerFailure, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			return m
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req()
			resp := h.reply(t.Context(), req, true)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("pack: %v", err)
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	tests := []struct {
		name      string
		endpoints int
		udp       bool
		edns      uint16
		truncated bool
	}{
		{name: "fits in 512", endpoints: 10, udp: true},
		{name: "too big for 512", endpoints: 100, udp: true, truncated: true},
		{name: "fits the EDNS buffer", endpoints: 100, udp: true, edns: 4096},
		{name: "too big for the EDNS buffer", endpoints: 400, udp: true, edns: 4096, truncated: true},
		{name: "TCP takes it all", endpoints: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := testHandler(t, nil, big(tc.endpoints))
			req := new(dns.Msg)
			req.SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
			limit := 512
			if tc.edns > 0 {
				req.SetEdns0(tc.edns, false)
				limit = int(tc.edns)
			}
			resp := h.reply(t.Context(), req, tc.udp)
			wire, err := resp.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if resp.Truncated != tc.truncated {
				t.Errorf("TC %v, want %v (%d answers, %d bytes)", resp.Truncated, tc.truncated, len(resp.Answer), len(wire))
			}
			if tc.udp && len(wire) > limit {
				t.Errorf("%d bytes over UDP, limit %d", len(wire), limit)
			}
			if !tc.truncated && len(resp.Answer) != tc.endpoints {
				t.Errorf("%d answers, want %d", len(resp.Answer), tc.endpoints)
			}
			if tc.edns > 0 && resp.IsEdns0() == nil {
				t.Error("no OPT in the answer to an EDNS query")
			}
		})
	}
}

// TestIncrementalIndex replaces one Service's records and checks that
// only its names change, including names shared with another Service.
func TestIncrementalIndex(t *testing.T) {
	h := testHandler(t, nil)
	before := h.ix.serial.Load()
	// A second headless Service selecting the same pod shares its PTR.
	shared := service("default", "peers", "None")
	h.ix.set("default/peers", serviceRecords("cluster.local.", shared, fixture()[2].slices))
	ptr := func() []string {
		req := new(dns.Msg)
		req.SetQuestion("5.0.244.10.in-addr.arpa.", dns.TypePTR)
		return rrStrings(h.reply(t.Context(), req, false).Answer)
	}
	want := []string{
		"5.0.244.10.in-addr.arpa. PTR web-0.nginx.default.svc.cluster.local.",
		"5.0.244.10.in-addr.arpa. PTR web-0.peers.default.svc.cluster.local.",
	}
	if got := ptr(); !slices.Equal(got, want) {
		t.Fatalf("shared PTR %q, want %q", got, want)
	}
	h.ix.set("default/nginx", nil)
	if got := ptr(); !slices.Equal(got, want[1:]) {
		t.Fatalf("after removing nginx: %q", got)
	}
	if _, ok := h.ix.lookup("web-0.nginx.default.svc.cluster.local."); ok {
		t.Error("web-0.nginx still there")
	}
	if _, ok := h.ix.lookup("default.svc.cluster.local."); !ok {
		t.Error("the namespace name went with one of its services")
	}
	if h.ix.serial.Load() == before {
		t.Error("serial did not change")
	}
	for _, o := range h.ix.owners() {
		h.ix.set(o, nil)
	}
	if len(h.ix.merged) != 0 || len(h.ix.byName) != 0 || len(h.ix.ents) != 0 {
		t.Errorf("index not empty after removing everything: %d names", len(h.ix.merged))
	}
}
