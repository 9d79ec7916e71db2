package proxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A rule is a list of statements, written the way nft prints it and
// compiled to the kernel's expressions from the same values, so that what
// the golden files show is what the kernel gets.
type rule struct {
	stmts   []stmt
	comment string
}

// stmt is one statement of a rule.
type stmt interface {
	// nft is the statement in nft's syntax.
	nft() string
	// exprs compiles the statement.
	exprs() []expr.Any
}

func r(stmts ...stmt) rule { return rule{stmts: stmts} }

func (r rule) withComment(c string) rule { r.comment = c; return r }

func (r rule) String() string {
	parts := make([]string, 0, len(r.stmts)+1)
	for _, s := range r.stmts {
		parts = append(parts, s.nft())
	}
	if r.comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.comment))
	}
	return strings.Join(parts, " ")
}

func (r rule) exprs() []expr.Any {
	var out []expr.Any
	for _, s := range r.stmts {
		out = append(out, s.exprs()...)
	}
	return out
}

// Fields of the IPv4 header that rules match.
type ipField uint32

const (
	saddr ipField = 12 // offsets in the IPv4 header
	daddr ipField = 16
)

func (f ipField) String() string {
	if f == saddr {
		return "saddr"
	}
	return "daddr"
}

// ipMatch is "ip saddr|daddr [!=] addr-or-prefix".
type ipMatch struct {
	field  ipField
	neg    bool
	prefix netip.Prefix
}

func ipIs(f ipField, a netip.Addr) ipMatch   { return ipMatch{field: f, prefix: netip.PrefixFrom(a, 32)} }
func ipIn(f ipField, p netip.Prefix) ipMatch { return ipMatch{field: f, prefix: p.Masked()} }
func ipNotIn(f ipField, p netip.Prefix) ipMatch {
	return ipMatch{field: f, neg: true, prefix: p.Masked()}
}

func (m ipMatch) nft() string {
	s := "ip " + m.field.String() + " "
	if m.neg {
		s += "!= "
	}
	if m.prefix.Bits() == 32 {
		return s + m.prefix.Addr().String()
	}
	return s + m.prefix.String()
}

func (m ipMatch) exprs() []expr.Any {
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: uint32(m.field), Len: 4}}
	if bits := m.prefix.Bits(); bits < 32 {
		mask := ^uint32(0) << (32 - bits)
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.BigEndian.PutUint32(mask), Xor: make([]byte, 4)})
	}
	op := expr.CmpOpEq
	if m.neg {
		op = expr.CmpOpNeq
	}
	a := m.prefix.Addr().As4()
	return append(out, &expr.Cmp{Op: op, Register: 1, Data: a[:]})
}

// ipInSet is "ip saddr|daddr @set".
type ipInSet struct {
	field ipField
	set   string
}

func (m ipInSet) nft() string { return "ip " + m.field.String() + " @" + m.set }

func (m ipInSet) exprs() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: uint32(m.field), Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: m.set},
	}
}

// l4proto is "meta l4proto tcp".
type l4proto uint8

func (p l4proto) nft() string { return "meta l4proto " + protoName(uint8(p)) }

func (p l4proto) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}},
	}
}

// fibLocal is "fib saddr|daddr type local".
type fibLocal ipField

func (f fibLocal) nft() string { return "fib " + ipField(f).String() + " type local" }

func (f fibLocal) exprs() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: ipField(f) == saddr, FlagDADDR: ipField(f) == daddr, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ctStateNew is "ct state new".
type ctStateNew struct{}

func (ctStateNew) nft() string { return "ct state new" }

func (ctStateNew) exprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// verdict is "jump C", "goto C", "return", "drop" or "accept".
type verdict struct {
	kind  expr.VerdictKind
	chain string
}

func jump(c string) verdict  { return verdict{expr.VerdictJump, c} }
func goTo(c string) verdict  { return verdict{expr.VerdictGoto, c} }
func drop() verdict          { return verdict{kind: expr.VerdictDrop} }
func returnVerdict() verdict { return verdict{kind: expr.VerdictReturn} }

func (v verdict) nft() string {
	switch v.kind {
	case expr.VerdictJump:
		return "jump " + v.chain
	case expr.VerdictGoto:
		return "goto " + v.chain
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictAccept:
		return "accept"
	}
	return fmt.Sprintf("verdict(%d)", v.kind)
}

func (v verdict) exprs() []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: v.kind, Chain: v.chain}}
}

// vmapLookup dispatches on a named verdict map: "ip daddr . meta l4proto .
// th dport vmap @M" (withAddr) or "meta l4proto . th dport vmap @M".
type vmapLookup struct {
	withAddr bool
	vmap     string
}

func (v vmapLookup) nft() string {
	k := "meta l4proto . th dport"
	if v.withAddr {
		k = "ip daddr . " + k
	}
	return k + " vmap @" + v.vmap
}

func (v vmapLookup) exprs() []expr.Any {
	// Concatenations use 32-bit registers from 8 (= the 128-bit register
	// 1): each field starts on a fresh one.
	var out []expr.Any
	reg := uint32(1)
	next := uint32(9)
	if v.withAddr {
		out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: uint32(daddr), Len: 4})
		reg = next
		next++
	}
	out = append(out,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Payload{DestRegister: next, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: v.vmap},
	)
	return out
}

// numgenVmap spreads at random over a verdict map of n endpoints:
// "numgen random mod N vmap @M" (M maps 0..N-1 to endpoint chains).
type numgenVmap struct {
	n    int
	vmap string
}

func (v numgenVmap) nft() string { return fmt.Sprintf("numgen random mod %d vmap @%s", v.n, v.vmap) }

func (v numgenVmap) exprs() []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(v.n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: v.vmap},
	}
}

// masqueradeMark is the packet mark bit that asks the masquerading chain
// to masquerade a connection's first packet (kube-proxy's 0x4000).
const masqueradeMark = 0x4000

// markSet is "meta mark set meta mark | 0x4000" (or "^ 0x4000" to clear
// it again).
type markSet struct{ clear bool }

func (m markSet) nft() string {
	if m.clear {
		return fmt.Sprintf("meta mark set meta mark ^ %#x", masqueradeMark)
	}
	return fmt.Sprintf("meta mark set meta mark | %#x", masqueradeMark)
}

func (m markSet) exprs() []expr.Any {
	mask, xor := ^uint32(masqueradeMark), uint32(masqueradeMark)
	if m.clear {
		mask = ^uint32(0)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// markUnset is "meta mark & 0x4000 == 0".
type markUnset struct{}

func (markUnset) nft() string { return fmt.Sprintf("meta mark & %#x == 0", masqueradeMark) }

func (markUnset) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(masqueradeMark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

// masquerade is "masquerade fully-random".
type masquerade struct{}

func (masquerade) nft() string { return "masquerade fully-random" }

func (masquerade) exprs() []expr.Any { return []expr.Any{&expr.Masq{FullyRandom: true}} }

// reject is "reject with tcp reset" (after a tcp match) or "reject" (ICMP
// port unreachable).
type reject struct{ tcpReset bool }

func (r reject) nft() string {
	if r.tcpReset {
		return "reject with tcp reset"
	}
	return "reject"
}

func (r reject) exprs() []expr.Any {
	if r.tcpReset {
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
	}
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable}}
}

// dnat is "dnat to IP:port".
type dnat netip.AddrPort

func (d dnat) nft() string { return "dnat to " + netip.AddrPort(d).String() }

func (d dnat) exprs() []expr.Any {
	a := netip.AddrPort(d).Addr().As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(netip.AddrPort(d).Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
	}
}

// updateSaddr is "update @set { ip saddr timeout Ns }": it (re)arms the
// client's session affinity entry.
type updateSaddr struct {
	set     string
	timeout time.Duration
}

func (u updateSaddr) nft() string {
	return fmt.Sprintf("update @%s { ip saddr timeout %ds }", u.set, int64(u.timeout/time.Second))
}

func (u updateSaddr) exprs() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: uint32(saddr), Len: 4},
		&expr.Dynset{SrcRegKey: 1, SetName: u.set, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: u.timeout},
	}
}

// Protocols.
const (
	protoTCP  = unix.IPPROTO_TCP
	protoUDP  = unix.IPPROTO_UDP
	protoSCTP = unix.IPPROTO_SCTP
)

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// icmpPortUnreachable is ICMP destination unreachable's code 3.
const icmpPortUnreachable = 3
