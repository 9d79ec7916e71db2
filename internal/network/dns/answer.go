package dns

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// loopOption is the EDNS0 option code (from the local/experimental range)
// the server puts, with its instance ID, on queries it forwards: a query
// that arrives carrying it went round in a loop.
const loopOption = 65423

// maxChase bounds the CNAME chain followed inside the zone.
const maxChase = 8

// resolver is what answers names outside the zone.
type resolver interface {
	resolve(ctx context.Context, q dns.Question, dnssecOK bool) (*dns.Msg, error)
}

// handler turns a query into a response: zone names from the index,
// everything else from the resolver.
type handler struct {
	zone   string // canonical FQDN
	ttl    uint32
	ix     *index
	fwd    resolver // nil: names outside the zone get SERVFAIL
	loopID []byte
	onLoop func(name string) // called when a query came back to us
}

// reply answers req. udp says whether the answer goes over UDP, and so may
// need truncating to what the client can take.
func (h *handler) reply(ctx context.Context, req *dns.Msg, udp bool) *dns.Msg {
	resp := new(dns.Msg)
	if len(req.Question) != 1 {
		resp.SetRcodeFormatError(req)
		return resp
	}
	resp.SetReply(req)
	resp.RecursionAvailable = true
	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode = dns.RcodeNotImplemented
		return resp
	}
	size := dns.MinMsgSize
	opt := req.IsEdns0()
	if opt != nil {
		size = max(dns.MinMsgSize, min(int(opt.UDPSize()), 4096))
		if opt.Version() != 0 {
			resp.Rcode = dns.RcodeBadVers
			resp.SetEdns0(uint16(size), false)
			return resp
		}
		if h.looped(opt) {
			if h.onLoop != nil {
				h.onLoop(req.Question[0].Name)
			}
			resp.Rcode = dns.RcodeServerFailure
			resp.SetEdns0(uint16(size), false)
			return resp
		}
	}
	q := req.Question[0]
	name := canonical(q.Name)
	switch {
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		resp.Rcode = dns.RcodeRefused // no zone transfers, here or upstream
	case dns.IsSubDomain(h.zone, name):
		if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
			resp.Rcode = dns.RcodeRefused
			break
		}
		resp.Authoritative = true
		h.zoneAnswer(ctx, resp, q.Name, name, q.Qtype, 0)
	case q.Qtype == dns.TypePTR && h.reverse(resp, q.Name, name):
	default:
		h.forward(ctx, resp, q, opt != nil && opt.Do())
	}
	if opt != nil {
		resp.SetEdns0(uint16(size), false)
	}
	if udp {
		resp.Truncate(size)
	} else {
		resp.Compress = true
	}
	return resp
}

func (h *handler) looped(opt *dns.OPT) bool {
	for _, o := range opt.Option {
		if l, ok := o.(*dns.EDNS0_LOCAL); ok && l.Code == loopOption && bytes.Equal(l.Data, h.loopID) {
			return true
		}
	}
	return false
}

// zoneAnswer adds to resp what the zone says about name (owner is name as
// the client spelled it) and type qtype; depth counts CNAMEs followed.
func (h *handler) zoneAnswer(ctx context.Context, resp *dns.Msg, owner, name string, qtype uint16, depth int) {
	if r, ok := h.ix.lookup(name); ok {
		h.fromSet(ctx, resp, owner, r, qtype, depth)
		return
	}
	rel := strings.TrimSuffix(strings.TrimSuffix(name, h.zone), ".")
	switch {
	case rel == "":
		switch qtype {
		case dns.TypeSOA:
			resp.Answer = append(resp.Answer, h.soa())
		case dns.TypeNS:
			resp.Answer = append(resp.Answer, h.ns())
		case dns.TypeANY:
			resp.Answer = append(resp.Answer, h.soa(), h.ns())
		default:
			h.noData(resp)
		}
	case rel == "svc" || rel == "pod":
		h.noData(resp)
	case rel == "dns-version":
		if qtype == dns.TypeTXT || qtype == dns.TypeANY {
			resp.Answer = append(resp.Answer, &dns.TXT{Hdr: h.hdr(owner, dns.TypeTXT), Txt: []string{"1.1.0"}})
		} else {
			h.noData(resp)
		}
	case strings.HasSuffix(rel, ".pod"):
		h.podAnswer(resp, owner, strings.TrimSuffix(rel, ".pod"), qtype)
	default:
		h.nxDomain(resp)
	}
}

// podAnswer answers <a-b-c-d>.<ns>.pod.<zone> (rel is "<a-b-c-d>.<ns>"),
// for any well-formed address.
func (h *handler) podAnswer(resp *dns.Msg, owner, rel string, qtype uint16) {
	labels := strings.Split(rel, ".")
	switch len(labels) {
	case 1:
		h.noData(resp) // <ns>.pod.<zone>
		return
	case 2:
	default:
		h.nxDomain(resp)
		return
	}
	ip, ok := undashed(labels[0])
	if !ok {
		h.nxDomain(resp)
		return
	}
	if rr := h.addrRR(owner, ip, qtype); rr != nil {
		resp.Answer = append(resp.Answer, rr)
		return
	}
	h.noData(resp)
}

// fromSet answers from the records of one name.
func (h *handler) fromSet(ctx context.Context, resp *dns.Msg, owner string, r *rrset, qtype uint16, depth int) {
	if r.cname != "" && qtype != dns.TypeCNAME {
		resp.Answer = append(resp.Answer, &dns.CNAME{Hdr: h.hdr(owner, dns.TypeCNAME), Target: r.cname})
		if qtype != dns.TypeANY {
			h.chase(ctx, resp, r.cname, qtype, depth+1)
		}
		return
	}
	n := len(resp.Answer)
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		h.addrs(resp, owner, r.addrs, qtype)
	case dns.TypeSRV:
		h.srv(resp, owner, r.srv)
	case dns.TypePTR:
		for _, p := range r.ptr {
			resp.Answer = append(resp.Answer, &dns.PTR{Hdr: h.hdr(owner, dns.TypePTR), Ptr: p})
		}
	case dns.TypeCNAME:
		if r.cname != "" {
			resp.Answer = append(resp.Answer, &dns.CNAME{Hdr: h.hdr(owner, dns.TypeCNAME), Target: r.cname})
		}
	case dns.TypeANY:
		h.addrs(resp, owner, r.addrs, dns.TypeANY)
		h.srv(resp, owner, r.srv)
		for _, p := range r.ptr {
			resp.Answer = append(resp.Answer, &dns.PTR{Hdr: h.hdr(owner, dns.TypePTR), Ptr: p})
		}
	}
	if len(resp.Answer) == n {
		h.noData(resp)
	}
}

// chase follows a CNAME to target: in the zone through the index, outside
// it through the resolver. The response code becomes the target's (RFC
// 6604).
func (h *handler) chase(ctx context.Context, resp *dns.Msg, target string, qtype uint16, depth int) {
	if depth > maxChase {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	if dns.IsSubDomain(h.zone, target) {
		h.zoneAnswer(ctx, resp, target, target, qtype, depth)
		return
	}
	if h.fwd == nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	m, err := h.fwd.resolve(ctx, dns.Question{Name: target, Qtype: qtype, Qclass: dns.ClassINET}, false)
	if err != nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	resp.Rcode = m.Rcode
	resp.Answer = append(resp.Answer, m.Answer...)
	if len(m.Answer) == 0 {
		resp.Ns = append(resp.Ns, m.Ns...)
	}
}

// reverse answers a PTR query for an address the index knows; it reports
// false for the others, which go to the upstreams.
func (h *handler) reverse(resp *dns.Msg, owner, name string) bool {
	if !strings.HasSuffix(name, ".in-addr.arpa.") && !strings.HasSuffix(name, ".ip6.arpa.") {
		return false
	}
	r, ok := h.ix.lookup(name)
	if !ok || len(r.ptr) == 0 {
		return false
	}
	resp.Authoritative = true
	for _, p := range r.ptr {
		resp.Answer = append(resp.Answer, &dns.PTR{Hdr: h.hdr(owner, dns.TypePTR), Ptr: p})
	}
	return true
}

func (h *handler) forward(ctx context.Context, resp *dns.Msg, q dns.Question, dnssecOK bool) {
	if h.fwd == nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	m, err := h.fwd.resolve(ctx, q, dnssecOK)
	if err != nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	resp.Rcode = m.Rcode
	resp.Answer, resp.Ns = m.Answer, m.Ns
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			resp.Extra = append(resp.Extra, rr)
		}
	}
	resp.AuthenticatedData = m.AuthenticatedData && dnssecOK
}

// addrs appends the addresses of family qtype (both for ANY), starting at
// a random one so that clients taking the first spread over endpoints.
func (h *handler) addrs(resp *dns.Msg, owner string, addrs []netip.Addr, qtype uint16) {
	if len(addrs) == 0 {
		return
	}
	start := 0
	if len(addrs) > 1 {
		start = rand.IntN(len(addrs))
	}
	for i := range addrs {
		if rr := h.addrRR(owner, addrs[(start+i)%len(addrs)], qtype); rr != nil {
			resp.Answer = append(resp.Answer, rr)
		}
	}
}

func (h *handler) addrRR(owner string, ip netip.Addr, qtype uint16) dns.RR {
	switch {
	case ip.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
		a := ip.As4()
		return &dns.A{Hdr: h.hdr(owner, dns.TypeA), A: a[:]}
	case ip.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		a := ip.As16()
		return &dns.AAAA{Hdr: h.hdr(owner, dns.TypeAAAA), AAAA: a[:]}
	}
	return nil
}

// srv appends SRV records, with the targets' addresses in the additional
// section.
func (h *handler) srv(resp *dns.Msg, owner string, list []srvTarget) {
	if len(list) == 0 {
		return
	}
	weight := uint16(100 / len(list))
	added := map[string]bool{}
	for _, s := range list {
		resp.Answer = append(resp.Answer, &dns.SRV{Hdr: h.hdr(owner, dns.TypeSRV), Priority: 0, Weight: weight, Port: s.port, Target: s.target})
		if added[s.target] {
			continue
		}
		added[s.target] = true
		if t, ok := h.ix.lookup(s.target); ok {
			for _, ip := range t.addrs {
				if rr := h.addrRR(s.target, ip, dns.TypeANY); rr != nil {
					resp.Extra = append(resp.Extra, rr)
				}
			}
		}
	}
}

func (h *handler) noData(resp *dns.Msg) {
	resp.Ns = append(resp.Ns, h.soa())
}

func (h *handler) nxDomain(resp *dns.Msg) {
	resp.Rcode = dns.RcodeNameError
	resp.Ns = append(resp.Ns, h.soa())
}

func (h *handler) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: h.ttl}
}

func (h *handler) soa() dns.RR {
	return &dns.SOA{
		Hdr:     h.hdr(h.zone, dns.TypeSOA),
		Ns:      "ns.dns." + h.zone,
		Mbox:    "hostmaster." + h.zone,
		Serial:  h.ix.serial.Load(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  h.ttl,
	}
}

func (h *handler) ns() dns.RR {
	return &dns.NS{Hdr: h.hdr(h.zone, dns.TypeNS), Ns: "ns.dns." + h.zone}
}
