package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// allowed walks a new connection through a Ruleset the way the kernel
// walks the table: the source's egress dispatch, then the destination's
// ingress dispatch; each must accept (or find no entry).
func allowed(rs *Ruleset, src, dst netip.Addr, proto uint8, port uint16) bool {
	pkt := packet{src, dst, proto, port}
	if chain, ok := rs.Egress[src]; ok && evalChain(rs, chain, pkt, 0) != Accept {
		return false
	}
	if chain, ok := rs.Ingress[dst]; ok && evalChain(rs, chain, pkt, 0) != Accept {
		return false
	}
	return true
}

type packet struct {
	src, dst netip.Addr
	proto    uint8
	port     uint16
}

const fallThrough VerdictKind = -1

func evalChain(rs *Ruleset, name string, p packet, depth int) VerdictKind {
	c, ok := rs.Chains[name]
	if !ok || depth > 16 {
		panic(fmt.Sprintf("chain %q missing or loop", name))
	}
	for _, r := range c.Rules {
		if !matches(rs, r, p) {
			continue
		}
		switch r.Verdict.Kind {
		case Accept, Drop:
			return r.Verdict.Kind
		case Jump:
			if v := evalChain(rs, r.Verdict.Chain, p, depth+1); v != fallThrough {
				return v
			}
		case Goto:
			return evalChain(rs, r.Verdict.Chain, p, depth+1)
		}
	}
	return fallThrough
}

func matches(rs *Ruleset, r Rule, p packet) bool {
	in := func(set string, a netip.Addr) bool {
		s, ok := rs.Sets[set]
		if !ok {
			panic(fmt.Sprintf("set %q missing", set))
		}
		if slices.Contains(s.Addrs, a) {
			return true
		}
		for _, rg := range s.Ranges {
			if rg.From.Compare(a) <= 0 && a.Compare(rg.To) <= 0 {
				return true
			}
		}
		return false
	}
	switch {
	case r.Saddr != "" && !in(r.Saddr, p.src),
		r.Daddr != "" && !in(r.Daddr, p.dst),
		r.Proto != 0 && r.Proto != p.proto,
		r.PortFrom != 0 && (p.port < r.PortFrom || p.port > r.PortTo):
		return false
	}
	return true
}

// Addresses of the test world (testdata/world.yaml).
var hosts = map[string]netip.Addr{
	"web-1":         netip.MustParseAddr("10.244.0.2"),
	"web-2":         netip.MustParseAddr("10.244.0.3"),
	"db":            netip.MustParseAddr("10.244.0.4"),
	"client":        netip.MustParseAddr("10.244.0.5"),
	"tools":         netip.MustParseAddr("10.244.0.6"),
	"web-remote":    netip.MustParseAddr("10.244.1.2"),
	"client-remote": netip.MustParseAddr("10.244.1.3"),
	"web-done":      netip.MustParseAddr("10.244.0.9"),
	"node-dns":      netip.MustParseAddr("10.244.0.1"),
	"corp":          netip.MustParseAddr("10.1.2.3"),
	"corp-except":   netip.MustParseAddr("10.245.1.7"),
	"internet":      netip.MustParseAddr("203.0.113.9"),
}

const (
	tcp  = 6
	udp  = 17
	sctp = 132
)

// TestSemantics checks what each golden case allows against upstream's
// documented semantics, connection by connection.
func TestSemantics(t *testing.T) {
	type conn struct {
		from, to string
		proto    uint8
		port     uint16
		want     bool
	}
	cases := []struct {
		name  string
		file  string
		conns []conn
	}{
		{"no policies", "", []conn{
			{"client", "web-1", tcp, 80, true},
			{"web-1", "internet", udp, 53, true},
		}},
		{"deny-all ingress", "deny-all-ingress.yaml", []conn{
			{"client", "web-1", tcp, 80, false},
			{"web-2", "web-1", tcp, 80, false},
			{"web-remote", "db", tcp, 5432, false},
			{"web-1", "client", tcp, 80, true},   // egress untouched, client not isolated
			{"web-1", "internet", tcp, 80, true}, // egress untouched
			{"client", "tools", tcp, 80, true},   // other namespace
		}},
		{"podSelector peer", "allow-zone-prod.yaml", []conn{
			{"db", "web-1", tcp, 80, true},         // zone=prod, same namespace
			{"web-remote", "web-2", tcp, 80, true}, // peers may run on other nodes
			{"web-2", "web-1", tcp, 80, false},     // zone=staging
			{"client", "web-1", tcp, 80, false},    // zone=prod but another namespace
			{"web-done", "web-1", tcp, 80, false},  // finished pods are no peers
			{"client", "db", tcp, 5432, true},      // db is not selected
		}},
		{"namespaceSelector peer", "namespace-selector.yaml", []conn{
			{"client", "db", tcp, 5432, true},
			{"tools", "db", udp, 9, true},
			{"client-remote", "db", tcp, 1, true},
			{"web-1", "db", tcp, 5432, false}, // shop is not team=dev
		}},
		{"pod and namespace in one peer", "pod-and-namespace.yaml", []conn{
			{"client", "db", tcp, 5432, true},
			{"client-remote", "db", tcp, 5432, true},
			{"tools", "db", tcp, 5432, false},  // team=dev but not app=client
			{"client", "db", tcp, 5433, false}, // wrong port
			{"client", "db", udp, 5432, false}, // protocol defaults to TCP
			{"web-1", "db", tcp, 5432, true},   // second peer: zone in (prod)
			{"web-2", "db", tcp, 5432, false},
		}},
		{"ipBlock with except", "ipblock-except.yaml", []conn{
			{"corp", "web-1", tcp, 80, true},
			{"corp-except", "web-1", tcp, 80, false},
			{"client", "web-1", tcp, 80, false}, // pod network excepted
			{"web-1", "internet", tcp, 443, true},
			{"web-1", "corp", tcp, 443, false},
			{"web-1", "corp", tcp, 8443, true}, // 0.0.0.0/0 on 8443
			{"web-1", "db", tcp, 8443, true},
			{"web-1", "db", tcp, 5432, false},
		}},
		{"named ports", "named-ports.yaml", []conn{
			{"client", "web-1", tcp, 8080, true},  // http is 8080 on web-1
			{"client", "web-1", tcp, 9100, false}, // metrics is not http
			{"client", "web-2", tcp, 8081, true},  // web-2 is not selected by http-in; egress resolves 8081
			{"client", "web-2", tcp, 8080, false}, // egress: web-2's http is 8081
			{"client", "web-remote", tcp, 8080, true},
			{"tools", "db", tcp, 5432, false}, // db is selected by http-in and has no http port
			{"client", "internet", tcp, 8080, false},
		}},
		{"endPort and protocols", "end-port.yaml", []conn{
			{"client", "db", tcp, 5432, true},
			{"client", "db", tcp, 5440, true},
			{"client", "db", tcp, 5441, false},
			{"client", "db", udp, 53, true},
			{"client", "db", udp, 5432, false},
			{"client", "db", sctp, 9999, true},
		}},
		{"egress deny except DNS", "egress-deny-except-dns.yaml", []conn{
			{"web-1", "node-dns", udp, 53, true},
			{"web-1", "node-dns", tcp, 53, true},
			{"web-1", "client", udp, 53, true}, // namespaceSelector {} holds every pod
			{"web-1", "internet", udp, 53, false},
			{"web-1", "client", tcp, 80, false},
			{"client", "node-dns", udp, 53, true}, // kube-system k8s-app=kube-dns, port dns
			{"client", "node-dns", tcp, 53, false},
			{"client", "web-1", udp, 53, false},
			{"web-remote", "web-1", tcp, 80, true}, // ingress untouched
		}},
		{"allow-all beside deny-all", "allow-all.yaml", []conn{
			{"client", "web-1", tcp, 80, true},
			{"web-1", "internet", udp, 9, true},
		}},
		{"policies add up", "multiple-policies.yaml", []conn{
			{"client", "web-1", tcp, 80, true}, // a-from-dev
			{"db", "web-1", tcp, 80, true},     // b-web-from-prod
			{"db", "web-2", tcp, 80, true},
			{"web-1", "db", tcp, 80, false}, // db only has a-from-dev
			{"client", "db", tcp, 80, true},
		}},
		{"a terminating pod's address is its successor's", "shared-address.yaml", []conn{
			{"web-1", "web-2", tcp, 80, false}, // 10.244.0.2 is web-1-new now: not zone=prod
			{"db", "web-1", tcp, 80, true},     // web-1-new is not isolated
			{"client", "web-1", tcp, 80, true},
		}},
		{"bad input allows no more", "bad-input.yaml", []conn{
			{"db", "web-1", tcp, 443, true},
			{"db", "web-1", tcp, 80, false},
			{"corp", "web-1", tcp, 443, false},
			{"client", "web-1", tcp, 1, false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.file != "" {
				files = append(files, tc.file)
			}
			rs := Translate(loadInput(t, files...))
			for _, c := range tc.conns {
				if got := allowed(rs, hosts[c.from], hosts[c.to], c.proto, c.port); got != c.want {
					t.Errorf("%s -> %s %d/%d: allowed %v, want %v", c.from, c.to, c.port, c.proto, got, c.want)
				}
			}
		})
	}
}

func TestPolicyTypesDefault(t *testing.T) {
	in := loadInput(t, "allow-zone-prod.yaml")
	// No policyTypes and no egress rules: ingress only.
	rs := Translate(in)
	if len(rs.Egress) != 0 || len(rs.Ingress) == 0 {
		t.Fatalf("ingress %d egress %d entries, want ingress only", len(rs.Ingress), len(rs.Egress))
	}
	// Egress rules without policyTypes: both.
	in = loadInput(t, "allow-all.yaml")
	for _, p := range in.Policies {
		p.Spec.PolicyTypes = nil
	}
	rs = Translate(in)
	// deny-all has no egress rules: ingress only; allow-all has both.
	if got := rs.Chains[rs.Egress[hosts["web-1"]]]; got == nil || len(got.Rules) != 2 {
		t.Fatalf("egress chain of web-1 = %+v, want allow-all's jump and the drop", got)
	}
}
