package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Names of the table's fixed parts.
const (
	DefaultTable = "skiff-policy"

	mapIngress = "ingress-pods"
	mapEgress  = "egress-pods"

	chainForwardEgress  = "forward-egress"
	chainForwardIngress = "forward-ingress"
	chainInputEgress    = "input-egress"
)

// Ruleset is the desired content of the policy table beyond its fixed base
// chains: what Translate computes and the Enforcer programs.
type Ruleset struct {
	// Sets by name.
	Sets map[string]*Set
	// Chains by name (regular chains only; the base chains are fixed).
	Chains map[string]*Chain
	// Ingress and Egress map the addresses of isolated local pods to the
	// chain of the policies that select them (maps ingress-pods and
	// egress-pods).
	Ingress map[netip.Addr]string
	Egress  map[netip.Addr]string
}

func newRuleset() *Ruleset {
	return &Ruleset{
		Sets:    map[string]*Set{},
		Chains:  map[string]*Chain{},
		Ingress: map[netip.Addr]string{},
		Egress:  map[netip.Addr]string{},
	}
}

// Set is a named set of IPv4 addresses: single addresses (pods), or ranges
// (an ipBlock; an interval set).
type Set struct {
	Name string
	// Comment says what the set holds, e.g. "ns/default pods[zone=prod]".
	Comment  string
	Interval bool
	// Addrs, sorted, when not Interval.
	Addrs []netip.Addr
	// Ranges, sorted and disjoint, when Interval.
	Ranges []Range
}

// Range is an inclusive range of IPv4 addresses.
type Range struct{ From, To netip.Addr }

func (r Range) String() string {
	if p, ok := r.prefix(); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// prefix returns r as a prefix when it is exactly one.
func (r Range) prefix() (netip.Prefix, bool) {
	from, to := addrUint(r.From), addrUint(r.To)
	size := to - from + 1 // 0 for the whole space
	if size&(size-1) != 0 || from&(size-1) != 0 {
		return netip.Prefix{}, false
	}
	bits := 32
	for s := size; s > 1; s >>= 1 {
		bits--
	}
	if size == 0 {
		bits = 0
	}
	return netip.PrefixFrom(r.From, bits), true
}

// Chain is a regular chain: a list of rules.
type Chain struct {
	Name  string
	Rules []Rule
}

// Rule matches on addresses (set names; empty matches any), protocol and
// destination port range, and then takes its verdict.
type Rule struct {
	Saddr, Daddr string // set names
	Proto        uint8  // IPPROTO_*; 0 = any
	PortFrom     uint16 // destination ports, inclusive; 0 = any
	PortTo       uint16
	Verdict      Verdict
	Comment      string
}

// Verdict is accept, drop, or a jump to a chain.
type Verdict struct {
	Kind  VerdictKind
	Chain string // for Jump and Goto
}

// VerdictKind is what a rule does with a packet it matches.
type VerdictKind int

// The verdicts policy chains use.
const (
	Accept VerdictKind = iota
	Drop
	Jump
	Goto
)

func (v Verdict) String() string {
	switch v.Kind {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Jump:
		return "jump " + v.Chain
	case Goto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("verdict(%d)", v.Kind)
}

var protoNames = map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}

func (r Rule) String() string {
	var b strings.Builder
	if r.Saddr != "" {
		fmt.Fprintf(&b, "ip saddr @%s ", r.Saddr)
	}
	if r.Daddr != "" {
		fmt.Fprintf(&b, "ip daddr @%s ", r.Daddr)
	}
	if r.Proto != 0 {
		name := protoNames[r.Proto]
		if name == "" {
			name = fmt.Sprint(r.Proto)
		}
		fmt.Fprintf(&b, "meta l4proto %s ", name)
		if r.PortFrom != 0 {
			if r.PortTo != r.PortFrom {
				fmt.Fprintf(&b, "th dport %d-%d ", r.PortFrom, r.PortTo)
			} else {
				fmt.Fprintf(&b, "th dport %d ", r.PortFrom)
			}
		}
	}
	b.WriteString(r.Verdict.String())
	if r.Comment != "" {
		fmt.Fprintf(&b, " comment %q", r.Comment)
	}
	return b.String()
}

// String renders the whole table in nft's syntax (base chains included),
// sorted, for golden files and failure messages.
func (rs *Ruleset) String() string {
	return rs.render(DefaultTable)
}

func (rs *Ruleset) render(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", table)
	for _, m := range []struct {
		name  string
		elems map[netip.Addr]string
	}{{mapEgress, rs.Egress}, {mapIngress, rs.Ingress}} {
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype ipv4_addr : verdict\n", m.name)
		keys := slices.SortedFunc(maps.Keys(m.elems), netip.Addr.Compare)
		if len(keys) > 0 {
			b.WriteString("\t\telements = {")
			for i, k := range keys {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "\n\t\t\t%s : goto %s", k, m.elems[k])
			}
			b.WriteString("\n\t\t}\n")
		}
		b.WriteString("\t}\n")
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Sets)) {
		s := rs.Sets[name]
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n", name)
		if s.Interval {
			b.WriteString("\t\tflags interval\n")
		}
		var elems []string
		for _, a := range s.Addrs {
			elems = append(elems, a.String())
		}
		for _, r := range s.Ranges {
			elems = append(elems, r.String())
		}
		if len(elems) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
		}
		if s.Comment != "" {
			fmt.Fprintf(&b, "\t\tcomment %q\n", s.Comment)
		}
		b.WriteString("\t}\n")
	}
	for _, bc := range baseChains {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %s; policy accept;\n", bc.name, bc.hookName, bc.prioName)
		b.WriteString("\t\tct state established,related accept\n")
		fmt.Fprintf(&b, "\t\tip %s vmap @%s\n\t}\n", bc.addr, bc.vmap)
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Chains)) {
		fmt.Fprintf(&b, "\tchain %s {\n", name)
		for _, r := range rs.Chains[name].Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintAddr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
