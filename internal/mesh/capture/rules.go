package capture

import (
	"fmt"
	"net/netip"
	"strings"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// TableName is the nftables table (family ip) in the pod's namespace.
const TableName = "skiff-mesh"

// The chains, named as istio-iptables names them; PREROUTING and OUTPUT
// are the base chains (nat hooks at dstnat priority).
const (
	chainPrerouting = "PREROUTING"
	chainOutput     = "OUTPUT"
	chainInbound    = "ISTIO_INBOUND"
	chainInRedirect = "ISTIO_IN_REDIRECT"
	chainOut        = "ISTIO_OUTPUT"
	chainRedirect   = "ISTIO_REDIRECT"
)

// passthroughSource is the address the proxy's inbound passthrough
// connects to the application from (Istio's InboundPassthroughBindIpv4).
var passthroughSource = netip.MustParsePrefix("127.0.0.6/32")

var localhost = netip.MustParsePrefix("127.0.0.1/32")

// Ruleset is the table's content.
type Ruleset struct {
	Chains []Chain
}

// Chain is one chain with its rules, in order.
type Chain struct {
	Name string
	// Hook is "prerouting" or "output" for a base chain, "" otherwise.
	Hook  string
	Rules []Rule
}

// Rule is one rule: every match that is set must hold (all of them are
// TCP: only TCP enters the table's chains), then the verdict.
type Rule struct {
	OIFLo   *bool // oifname "lo" (true) or != "lo" (false)
	SAddr   *Addr
	DAddr   *Addr
	DPort   uint16
	SKUID   *ID
	SKGID   *ID
	TCPOnly bool   // meta l4proto tcp (the base chains' jumps)
	Verdict string // "return", "jump", "redirect"
	Target  string // the chain of a jump
	ToPort  uint16 // the port of a redirect
}

// Addr matches an address range, or everything outside it.
type Addr struct {
	Prefix netip.Prefix
	Not    bool
}

// ID matches a socket owner's uid or gid, or any other.
type ID struct {
	ID  uint32
	Not bool
}

// Rules computes the table for spec, as istio-iptables orders its rules.
func Rules(s Spec) Ruleset {
	t := true
	jump := func(target string) Rule { return Rule{Verdict: "jump", Target: target} }
	ret := Rule{Verdict: "return"}
	with := func(r Rule, mod func(*Rule)) Rule { mod(&r); return r }

	rs := Ruleset{}
	// Inbound: the sidecar's ports and the excluded ones return, the
	// captured rest is redirected.
	inbound := Chain{Name: chainInbound}
	var prerouting []Rule
	if s.AllInbound || len(s.InboundPorts) > 0 {
		prerouting = append(prerouting, with(jump(chainInbound), func(r *Rule) { r.TCPOnly = true }))
		if s.AllInbound {
			for _, p := range s.ExcludeInboundPorts {
				inbound.Rules = append(inbound.Rules, with(ret, func(r *Rule) { r.DPort = p }))
			}
			inbound.Rules = append(inbound.Rules, jump(chainInRedirect))
		} else {
			for _, p := range s.InboundPorts {
				inbound.Rules = append(inbound.Rules, with(jump(chainInRedirect), func(r *Rule) { r.DPort = p }))
			}
		}
	}

	// Outbound, as ISTIO_OUTPUT: excluded ports; the passthrough's source;
	// the proxy calling its own pod through lo is inbound; other loopback
	// traffic and the proxy's own pass; localhost passes; excluded
	// ranges pass; captured ranges are redirected.
	out := Chain{Name: chainOut}
	for _, p := range s.ExcludeOutboundPorts {
		out.Rules = append(out.Rules, with(ret, func(r *Rule) { r.DPort = p }))
	}
	out.Rules = append(out.Rules, with(ret, func(r *Rule) { r.OIFLo = &t; r.SAddr = &Addr{Prefix: passthroughSource} }))
	for _, owner := range []func(*Rule, bool){
		func(r *Rule, not bool) { r.SKUID = &ID{ID: meshconfig.ProxyUID, Not: not} },
		func(r *Rule, not bool) { r.SKGID = &ID{ID: meshconfig.ProxyGID, Not: not} },
	} {
		out.Rules = append(out.Rules,
			with(jump(chainInRedirect), func(r *Rule) { r.OIFLo = &t; r.DAddr = &Addr{Prefix: localhost, Not: true}; owner(r, false) }),
			with(ret, func(r *Rule) { r.OIFLo = &t; owner(r, true) }),
			with(ret, func(r *Rule) { owner(r, false) }),
		)
	}
	out.Rules = append(out.Rules, with(ret, func(r *Rule) { r.DAddr = &Addr{Prefix: localhost} }))
	for _, p := range s.ExcludeOutboundCIDRs {
		out.Rules = append(out.Rules, with(ret, func(r *Rule) { r.DAddr = &Addr{Prefix: p} }))
	}
	if s.AllOutbound {
		out.Rules = append(out.Rules, jump(chainRedirect))
	} else {
		for _, p := range s.OutboundCIDRs {
			out.Rules = append(out.Rules, with(jump(chainRedirect), func(r *Rule) { r.DAddr = &Addr{Prefix: p} }))
		}
		out.Rules = append(out.Rules, ret)
	}

	rs.Chains = append(rs.Chains,
		Chain{Name: chainPrerouting, Hook: "prerouting", Rules: prerouting},
		Chain{Name: chainOutput, Hook: "output", Rules: []Rule{with(jump(chainOut), func(r *Rule) { r.TCPOnly = true })}},
		inbound,
		Chain{Name: chainInRedirect, Rules: []Rule{{TCPOnly: true, Verdict: "redirect", ToPort: meshconfig.InboundPort}}},
		out,
		Chain{Name: chainRedirect, Rules: []Rule{{TCPOnly: true, Verdict: "redirect", ToPort: meshconfig.OutboundPort}}},
	)
	return rs
}

// String renders the table as `nft list table` would show it.
func (rs Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", TableName)
	for i, c := range rs.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook != "" {
			fmt.Fprintf(&b, "\t\ttype nat hook %s priority dstnat; policy accept;\n", c.Hook)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// String renders the rule in nft's syntax.
func (r Rule) String() string {
	var parts []string
	not := func(n bool) string {
		if n {
			return "!= "
		}
		return ""
	}
	if r.TCPOnly {
		parts = append(parts, "meta l4proto tcp")
	}
	if r.OIFLo != nil {
		parts = append(parts, fmt.Sprintf(`oifname %s"lo"`, not(!*r.OIFLo)))
	}
	if r.SAddr != nil {
		parts = append(parts, fmt.Sprintf("ip saddr %s%s", not(r.SAddr.Not), prefixString(r.SAddr.Prefix)))
	}
	if r.DAddr != nil {
		parts = append(parts, fmt.Sprintf("ip daddr %s%s", not(r.DAddr.Not), prefixString(r.DAddr.Prefix)))
	}
	if r.DPort != 0 {
		parts = append(parts, fmt.Sprintf("tcp dport %d", r.DPort))
	}
	if r.SKUID != nil {
		parts = append(parts, fmt.Sprintf("meta skuid %s%d", not(r.SKUID.Not), r.SKUID.ID))
	}
	if r.SKGID != nil {
		parts = append(parts, fmt.Sprintf("meta skgid %s%d", not(r.SKGID.Not), r.SKGID.ID))
	}
	switch r.Verdict {
	case "jump":
		parts = append(parts, "jump "+r.Target)
	case "redirect":
		parts = append(parts, fmt.Sprintf("redirect to :%d", r.ToPort))
	default:
		parts = append(parts, r.Verdict)
	}
	return strings.Join(parts, " ")
}

// prefixString is nft's form: a single address without its /32.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
