package bridge

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Skiff's rules live in one nftables table of its own (family ip, default
// name "skiff"); nothing else is touched. In nft syntax, for a network on
// bridge B with subnet S and a container publishing 8080->80:
//
//	table ip skiff {
//	  chain guard {        # filter, hook prerouting, priority raw
//	    iifname B ip daddr 127.0.0.0/8 drop               # net=ID (route_localnet is on for B)
//	  }
//	  chain prerouting {   # nat, hook prerouting, priority dstnat
//	    fib daddr type local jump ports                   # skiff
//	  }
//	  chain output {       # nat, hook output, priority dstnat
//	    fib daddr type local jump ports                   # skiff
//	  }
//	  chain ports {
//	    [ip daddr HOSTIP] meta l4proto tcp th dport 8080 dnat to CIP:80   # ep=ID/CID
//	  }
//	  chain forward {      # filter, hook forward, priority filter
//	    iifname B oifname B accept                        # net=ID
//	    oifname B ct state established,related accept     # net=ID
//	    oifname B ct status dnat accept                   # net=ID (not internal)
//	    oifname B drop                                    # net=ID: other networks, outside
//	    iifname B drop                                    # net=ID, internal networks only
//	  }
//	  chain postrouting {  # nat, hook postrouting, priority srcnat
//	    ip saddr S oifname != B masquerade                # net=ID (not internal)
//	    ip saddr S oifname B ct status dnat masquerade    # net=ID: hairpin (not with NoHairpinNAT)
//	    oifname B ip saddr 127.0.0.0/8 masquerade         # net=ID: -p to 127.0.0.1
//	  }
//	}
//
// Every rule's comment names what it belongs to, so a network or endpoint
// removes exactly its own rules. Start replaces the whole table in one
// atomic batch; later changes add and delete single rules.
const (
	chainGuard       = "guard"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPorts       = "ports"
	chainForward     = "forward"
	chainPostrouting = "postrouting"

	commentBase = "skiff"
)

func netComment(networkID string) string { return "net=" + networkID }

func epComment(networkID, containerID string) string {
	return "ep=" + networkID + "/" + containerID
}

// ruleSpec is a rule before it is bound to a table.
type ruleSpec struct {
	chain   string
	comment string
	exprs   []expr.Any
}

type chainSpec struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
}

var chains = []chainSpec{
	{chainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw},
	{chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
	{chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
	{chainPorts, "", nil, nil},
	{chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
	{chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
}

// baseRules send traffic for the host's own addresses to the port mappings.
func baseRules() []ruleSpec {
	jump := func(chain string) ruleSpec {
		return ruleSpec{chain: chain, comment: commentBase, exprs: cat(
			fibDaddrLocal(),
			verdict(expr.VerdictJump, chainPorts),
		)}
	}
	return []ruleSpec{jump(chainPrerouting), jump(chainOutput)}
}

// networkRules are a network's isolation, egress and hairpin rules.
func networkRules(n *network) []ruleSpec {
	c := netComment(n.ID)
	br := n.Bridge
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	rs := []ruleSpec{
		{chainGuard, c, cat(iifname(br, true), daddrIn(loopback), verdict(expr.VerdictDrop, ""))},
		{chainForward, c, cat(iifname(br, true), oifname(br, true), verdict(expr.VerdictAccept, ""))},
		{chainForward, c, cat(oifname(br, true), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept, ""))},
	}
	if !n.Internal {
		rs = append(rs, ruleSpec{chainForward, c, cat(oifname(br, true), ctStatusDNAT(), verdict(expr.VerdictAccept, ""))})
	}
	rs = append(rs, ruleSpec{chainForward, c, cat(oifname(br, true), verdict(expr.VerdictDrop, ""))})
	// Every accept above is scoped to this bridge as the output, so none can
	// skip another network's drop; egress needs no accept (policy accept).
	if n.Internal {
		rs = append(rs, ruleSpec{chainForward, c, cat(iifname(br, true), verdict(expr.VerdictDrop, ""))})
	} else {
		rs = append(rs, ruleSpec{chainPostrouting, c, cat(saddrIn(n.prefix), oifname(br, false), masquerade())})
	}
	if !n.NoHairpinNAT {
		// Hairpin: a container reaching a published port of its own bridge
		// must see the reply come from the host, not from the peer directly.
		// (No iifname here: the input interface is unknown in postrouting.)
		rs = append(rs, ruleSpec{chainPostrouting, c, cat(saddrIn(n.prefix), oifname(br, true), ctStatusDNAT(), masquerade())})
	}
	rs = append(rs, ruleSpec{chainPostrouting, c, cat(oifname(br, true), saddrIn(loopback), masquerade())})
	return rs
}

// endpointRules are the DNAT rules of an endpoint's published ports.
func endpointRules(n *network, ep *endpoint) []ruleSpec {
	var rs []ruleSpec
	for _, p := range ep.Ports {
		var match []expr.Any
		if hip := netip.MustParseAddr(p.HostIP); !hip.IsUnspecified() {
			match = daddrEq(hip)
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		rs = append(rs, ruleSpec{chainPorts, epComment(n.ID, ep.ContainerID), cat(
			match,
			l4proto(proto),
			dportEq(p.HostPort),
			dnat(ep.ip, p.ContainerPort),
		)})
	}
	return rs
}

// firewall applies ruleSpecs to the table in the host's namespace.
type firewall struct {
	table *nftables.Table
	nsFD  int // the host network namespace
}

func (f *firewall) conn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(f.nsFD))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func (f *firewall) chain(name string) *nftables.Chain {
	for _, cs := range chains {
		if cs.name != name {
			continue
		}
		c := &nftables.Chain{Name: cs.name, Table: f.table, Type: cs.typ, Hooknum: cs.hook, Priority: cs.priority}
		if cs.hook != nil {
			accept := nftables.ChainPolicyAccept
			c.Policy = &accept
		}
		return c
	}
	panic("unknown chain " + name)
}

func (f *firewall) add(c *nftables.Conn, rs []ruleSpec) {
	for _, r := range rs {
		c.AddRule(&nftables.Rule{
			Table:    f.table,
			Chain:    f.chain(r.chain),
			Exprs:    r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
		})
	}
}

// replace swaps the whole table for one holding rs, atomically: packets see
// either the old rules or the new ones, never none.
func (f *firewall) replace(rs []ruleSpec) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	c.AddTable(f.table) // so that the delete below cannot fail
	c.DelTable(f.table)
	c.AddTable(f.table)
	for _, cs := range chains {
		c.AddChain(f.chain(cs.name))
	}
	f.add(c, rs)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: replace table %s: %w", f.table.Name, err)
	}
	return nil
}

// apply adds rs and deletes the rules whose comment is one of drop, in one
// atomic batch.
func (f *firewall) apply(rs []ruleSpec, drop ...string) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	if len(drop) > 0 {
		for _, cs := range chains {
			if !chainMayHold(cs.name, drop) {
				continue
			}
			rules, err := c.GetRules(f.table, f.chain(cs.name))
			if err != nil {
				return fmt.Errorf("nftables: list %s: %w", cs.name, err)
			}
			for _, r := range rules {
				if comment := ruleComment(r.UserData); comment != "" && contains(drop, comment) {
					r.Table, r.Chain = f.table, f.chain(cs.name)
					if err := c.DelRule(r); err != nil {
						return fmt.Errorf("nftables: %w", err)
					}
				}
			}
		}
	}
	f.add(c, rs)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// chainMayHold reports whether chain can hold rules with one of comments:
// endpoint rules live in the ports chain only, network rules everywhere else.
func chainMayHold(chain string, comments []string) bool {
	for _, c := range comments {
		if strings.HasPrefix(c, "ep=") == (chain == chainPorts) {
			return true
		}
	}
	return false
}

// ruleComment reads a rule's comment, tolerating malformed userdata.
func ruleComment(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := userdata.Type(ud[0]), int(ud[1])
		if len(ud) < 2+n {
			return ""
		}
		if typ == userdata.TypeComment {
			return strings.TrimRight(string(ud[2:2+n]), "\x00")
		}
		ud = ud[2+n:]
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Expression builders, register 1 unless said otherwise.

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func metaCmp(key expr.MetaKey, data []byte, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

func iifname(name string, eq bool) []expr.Any {
	return metaCmp(expr.MetaKeyIIFNAME, ifnameBytes(name), eq)
}

func oifname(name string, eq bool) []expr.Any {
	return metaCmp(expr.MetaKeyOIFNAME, ifnameBytes(name), eq)
}

func l4proto(proto byte) []expr.Any { return metaCmp(expr.MetaKeyL4PROTO, []byte{proto}, true) }

// ipIn matches the IPv4 address at offset (12 source, 16 destination)
// against a prefix.
func ipIn(offset uint32, p netip.Prefix) []expr.Any {
	m := ^uint32(0) << (32 - p.Bits())
	nw := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.BigEndian.PutUint32(m), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nw[:]},
	}
}

func saddrIn(p netip.Prefix) []expr.Any { return ipIn(12, p) }
func daddrIn(p netip.Prefix) []expr.Any { return ipIn(16, p) }

func daddrEq(a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

func dportEq(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// ctBits matches when any of bits is set in a conntrack key.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func ctState(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits) }

// ctStatusDNAT matches connections whose destination was NATed (IPS_DST_NAT).
func ctStatusDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, 1<<5) }

func fibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func dnat(ip netip.Addr, port uint16) []expr.Any {
	b := ip.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: b[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func masquerade() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}
