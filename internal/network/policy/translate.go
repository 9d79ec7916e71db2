package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Input is what Translate reads: the cluster's policies, pods and
// namespaces (from informers; Translate neither changes nor keeps them).
type Input struct {
	Policies   []*networkingv1.NetworkPolicy
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	// NodeName: pods with this spec.nodeName are isolated here; "" isolates
	// every pod (a single-node cluster, tests).
	NodeName string
	// NodeDNS are the addresses of the node's DNS server, which selectors
	// see as a kube-system pod labelled k8s-app=kube-dns (see the package
	// documentation).
	NodeDNS []netip.Addr
}

// The node DNS server as a pod, for selector matching.
const (
	dnsNamespace = "kube-system"
	dnsLabel     = "k8s-app"
	dnsLabelVal  = "kube-dns"
)

var dnsPorts = []corev1.ContainerPort{
	{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
	{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
}

// maxNameLen is nftables' limit on chain and set names (NUL excluded);
// maxCommentLen keeps comments well inside its 256-byte userdata (nft
// allows 128).
const (
	maxNameLen    = 255
	maxCommentLen = 128
)

// clip shortens a comment to maxCommentLen bytes.
func clip(s string) string {
	if len(s) <= maxCommentLen {
		return s
	}
	return s[:maxCommentLen-3] + "..."
}

// Translate computes the table that enforces in's policies on the node.
// It is pure and deterministic. Input that validation would reject (a bad
// selector, a malformed ipBlock or port) makes the affected peer or port
// match nothing; nothing panics.
func Translate(in Input) *Ruleset {
	t := newTranslator(in)
	pols := slices.Clone(in.Policies)
	slices.SortFunc(pols, func(a, b *networkingv1.NetworkPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	// The policy chains selecting each isolated address, in policy order.
	ingress, egress := map[netip.Addr][]string{}, map[netip.Addr][]string{}
	for _, pol := range pols {
		sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
		if err != nil {
			continue // selects nothing
		}
		target := selector{ns: pol.Namespace, pods: sel}
		var addrs []netip.Addr
		for _, p := range t.members(target) {
			if p.local {
				addrs = append(addrs, p.ips...)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		isIngress, isEgress := policyTypes(pol)
		if isIngress {
			name := t.policyChain(pol, target, true)
			for _, a := range addrs {
				ingress[a] = append(ingress[a], name)
			}
		}
		if isEgress {
			name := t.policyChain(pol, target, false)
			for _, a := range addrs {
				egress[a] = append(egress[a], name)
			}
		}
	}
	t.dispatch(ingress, "in-", t.rs.Ingress)
	t.dispatch(egress, "out-", t.rs.Egress)
	return t.rs
}

// policyTypes applies upstream's defaulting: Ingress always, Egress when
// the policy has egress rules.
func policyTypes(pol *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// dispatch groups addresses by the policies selecting them: one chain per
// group jumps to each policy's chain and drops what none accepted.
func (t *translator) dispatch(byAddr map[netip.Addr][]string, prefix string, out map[netip.Addr]string) {
	groups := map[string]string{} // policy chains, joined → group chain
	for a, chains := range byAddr {
		key := strings.Join(chains, "\n")
		name, ok := groups[key]
		if !ok {
			name = prefix + shortHash(key)
			groups[key] = name
			c := &Chain{Name: name}
			for _, pc := range chains {
				c.Rules = append(c.Rules, Rule{Verdict: Verdict{Kind: Jump, Chain: pc}})
			}
			c.Rules = append(c.Rules, Rule{Verdict: Verdict{Kind: Drop}})
			t.rs.Chains[name] = c
		}
		out[a] = name
	}
}

// peer is one entry of from/to: pods, an ipBlock's set, or anything (no
// entries at all).
type peer struct {
	idx   int // in from/to; -1 for anything
	pods  *selector
	block string
}

func (t *translator) peers(ns string, list []networkingv1.NetworkPolicyPeer) []peer {
	if len(list) == 0 {
		return []peer{{idx: -1}}
	}
	var out []peer
	for i, p := range list {
		switch {
		case p.IPBlock != nil:
			if p.PodSelector != nil || p.NamespaceSelector != nil {
				continue // invalid
			}
			if name, ok := t.blockSet(p.IPBlock); ok {
				out = append(out, peer{idx: i, block: name})
			}
		case p.PodSelector == nil && p.NamespaceSelector == nil:
			continue // invalid: matches nothing
		default:
			s := selector{ns: ns, pods: labels.Everything()}
			if p.PodSelector != nil {
				sel, err := metav1.LabelSelectorAsSelector(p.PodSelector)
				if err != nil {
					continue
				}
				s.pods = sel
			}
			if p.NamespaceSelector != nil {
				sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
				if err != nil {
					continue
				}
				s.nsSel = sel
			}
			out = append(out, peer{idx: i, pods: &s})
		}
	}
	return out
}

// port is one entry of ports: a protocol with a port range, or a name;
// proto 0 (no entries) matches anything.
type port struct {
	idx      int // in ports; -1 for anything
	proto    uint8
	protocol corev1.Protocol
	from, to uint16
	name     string
}

var protoNumbers = map[corev1.Protocol]uint8{corev1.ProtocolTCP: 6, corev1.ProtocolUDP: 17, corev1.ProtocolSCTP: 132}

func ports(list []networkingv1.NetworkPolicyPort) []port {
	if len(list) == 0 {
		return []port{{idx: -1}}
	}
	var out []port
	for i, p := range list {
		protocol := corev1.ProtocolTCP
		if p.Protocol != nil {
			protocol = *p.Protocol
		}
		num, ok := protoNumbers[protocol]
		if !ok {
			continue
		}
		pt := port{idx: i, proto: num, protocol: protocol}
		switch {
		case p.Port == nil:
		case p.Port.Type == intstr.String:
			if p.Port.StrVal == "" {
				continue
			}
			pt.name = p.Port.StrVal
		default:
			v := p.Port.IntVal
			end := v
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if v < 1 || end < v || end > 65535 {
				continue
			}
			pt.from, pt.to = uint16(v), uint16(end)
		}
		out = append(out, pt)
	}
	return out
}

// policyChain adds the chain of pol's ingress (or egress) rules and
// returns its name. Each rule becomes one nftables rule per peer and port
// (per port number for a named port).
func (t *translator) policyChain(pol *networkingv1.NetworkPolicy, target selector, ingress bool) string {
	type rule struct {
		peers []networkingv1.NetworkPolicyPeer
		ports []networkingv1.NetworkPolicyPort
	}
	var rules []rule
	dir, field, peersField := "out", "egress", "to"
	if ingress {
		dir, field, peersField = "in", "ingress", "from"
		for _, r := range pol.Spec.Ingress {
			rules = append(rules, rule{r.From, r.Ports})
		}
	} else {
		for _, r := range pol.Spec.Egress {
			rules = append(rules, rule{r.To, r.Ports})
		}
	}
	c := &Chain{Name: chainName(dir, pol.Namespace, pol.Name)}
	for i, rule := range rules {
		for _, pe := range t.peers(pol.Namespace, rule.peers) {
			peerSet := func() string { // made only when a rule uses it
				if pe.pods != nil {
					return t.podSet(*pe.pods)
				}
				return pe.block
			}
			for _, pt := range ports(rule.ports) {
				r := Rule{Proto: pt.proto, PortFrom: pt.from, PortTo: pt.to, Verdict: Verdict{Kind: Accept},
					Comment: ruleComment(field, i, peersField, pe.idx, pt.idx)}
				if pt.name == "" {
					if ingress {
						r.Saddr = peerSet()
					} else {
						r.Daddr = peerSet()
					}
					c.Rules = append(c.Rules, r)
					continue
				}
				// A named port is the destination's: the selected pod's
				// for ingress, the peer's for egress (addresses of an
				// ipBlock have none).
				var sets map[uint16]string
				switch {
				case ingress:
					r.Saddr = peerSet()
					sets = t.portSets(target, true, pt.name, pt.protocol)
				case pe.pods != nil:
					sets = t.portSets(*pe.pods, false, pt.name, pt.protocol)
				case pe.block == "":
					sets = t.portSets(selector{nsSel: labels.Everything(), pods: labels.Everything()}, false, pt.name, pt.protocol)
				}
				for _, n := range slices.Sorted(maps.Keys(sets)) {
					r.Daddr, r.PortFrom, r.PortTo = sets[n], n, n
					c.Rules = append(c.Rules, r)
				}
			}
		}
	}
	t.rs.Chains[c.Name] = c
	return c.Name
}

func ruleComment(dir string, rule int, peers string, peer, port int) string {
	s := dir + "[" + strconv.Itoa(rule) + "]"
	if peer >= 0 {
		s += "." + peers + "[" + strconv.Itoa(peer) + "]"
	}
	if port >= 0 {
		s += ".ports[" + strconv.Itoa(port) + "]"
	}
	return s
}

// chainName is dir/ns/name, shortened with a hash to fit nftables.
func chainName(dir, ns, name string) string {
	s := dir + "/" + ns + "/" + name
	if len(s) <= maxNameLen {
		return s
	}
	return s[:maxNameLen-13] + "~" + shortHash(s)
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

func sortAddrs(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}
