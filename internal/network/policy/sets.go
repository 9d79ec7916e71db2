package policy

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The translator's view of the cluster: pods by namespace with the
// addresses they own, namespaces' labels, and the sets selectors make.

// podInfo is what selectors and named ports need of a pod.
type podInfo struct {
	ns     string
	labels labels.Set
	ips    []netip.Addr // IPv4
	local  bool
	ports  []corev1.ContainerPort
}

type translator struct {
	rs       *Ruleset
	nsLabels map[string]labels.Set
	nsNames  []string // sorted: every namespace with an object or a pod
	byNS     map[string][]*podInfo
	podSets  map[string]string                  // selector key → set name
	portMemo map[string]map[uint16]string       // selector key + port → number → set name
	blocks   map[*networkingv1.IPBlock]blockSet // memo per block
}

type blockSet struct {
	name string
	ok   bool
}

func newTranslator(in Input) *translator {
	t := &translator{
		rs:       newRuleset(),
		nsLabels: map[string]labels.Set{},
		byNS:     map[string][]*podInfo{},
		podSets:  map[string]string{},
		portMemo: map[string]map[uint16]string{},
		blocks:   map[*networkingv1.IPBlock]blockSet{},
	}
	for _, ns := range in.Namespaces {
		t.nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	// An address belongs to one pod: a pod still terminating may hold the
	// address a new pod has been given already; the live one wins, then
	// the newer one.
	owner := map[netip.Addr]*corev1.Pod{}
	infos := map[*corev1.Pod]*podInfo{}
	for _, pod := range in.Pods {
		p := newPodInfo(pod, in.NodeName)
		if p == nil {
			continue
		}
		infos[pod] = p
		for _, a := range p.ips {
			if o, ok := owner[a]; !ok || ownsBefore(pod, o) {
				owner[a] = pod
			}
		}
	}
	for _, pod := range in.Pods {
		p := infos[pod]
		if p == nil {
			continue
		}
		p.ips = slices.DeleteFunc(p.ips, func(a netip.Addr) bool { return owner[a] != pod })
		if len(p.ips) > 0 {
			t.byNS[p.ns] = append(t.byNS[p.ns], p)
		}
	}
	var dnsIPs []netip.Addr
	for _, a := range in.NodeDNS {
		if a = a.Unmap(); a.Is4() {
			dnsIPs = append(dnsIPs, a)
		}
	}
	if len(dnsIPs) > 0 {
		t.byNS[dnsNamespace] = append(t.byNS[dnsNamespace], &podInfo{
			ns: dnsNamespace, labels: labels.Set{dnsLabel: dnsLabelVal}, ips: dnsIPs, ports: dnsPorts,
		})
	}
	names := map[string]bool{}
	for ns := range t.nsLabels {
		names[ns] = true
	}
	for ns := range t.byNS {
		names[ns] = true
		if _, ok := t.nsLabels[ns]; !ok {
			// Not in the cache (yet): the label the API server sets.
			t.nsLabels[ns] = labels.Set{corev1.LabelMetadataName: ns}
		}
	}
	t.nsNames = slices.Sorted(maps.Keys(names))
	return t
}

// ownsBefore reports whether pod a has a better claim on an address than
// pod b: not terminating, then created later, then by name.
func ownsBefore(a, b *corev1.Pod) bool {
	if ad, bd := a.DeletionTimestamp != nil, b.DeletionTimestamp != nil; ad != bd {
		return bd
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c > 0
	}
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name)) < 0
}

// newPodInfo returns what counts of pod, or nil when it is no peer and no
// target: host-network, finished, or without an IPv4 address.
func newPodInfo(pod *corev1.Pod, node string) *podInfo {
	if pod.Spec.HostNetwork || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	var ips []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			if a = a.Unmap(); a.Is4() && !slices.Contains(ips, a) {
				ips = append(ips, a)
			}
		}
	}
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
	if len(ips) == 0 {
		add(pod.Status.PodIP)
	}
	if len(ips) == 0 {
		return nil
	}
	p := &podInfo{
		ns:     pod.Namespace,
		labels: labels.Set(pod.Labels),
		ips:    ips,
		local:  node == "" || pod.Spec.NodeName == node,
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			p.ports = append(p.ports, c.Ports...)
		}
	}
	return p
}

// selector picks pods: those of namespace ns (nsSel nil) or of the
// namespaces nsSel matches, whose labels pods matches.
type selector struct {
	ns    string
	nsSel labels.Selector
	pods  labels.Selector
}

// key names what the selector picks, canonically; sets are shared by key.
func (s selector) key() string {
	scope := "ns/" + s.ns
	if s.nsSel != nil {
		scope = "ns[" + selString(s.nsSel) + "]"
	}
	return scope + " pods[" + selString(s.pods) + "]"
}

func selString(s labels.Selector) string {
	if s.Empty() {
		return "*"
	}
	return s.String()
}

func (t *translator) members(s selector) []*podInfo {
	var out []*podInfo
	pick := func(ns string) {
		for _, p := range t.byNS[ns] {
			if s.pods.Matches(p.labels) {
				out = append(out, p)
			}
		}
	}
	if s.nsSel == nil {
		pick(s.ns)
		return out
	}
	for _, ns := range t.nsNames {
		if s.nsSel.Matches(t.nsLabels[ns]) {
			pick(ns)
		}
	}
	return out
}

// podSet returns the set of the addresses of the pods s picks.
func (t *translator) podSet(s selector) string {
	key := s.key()
	if name, ok := t.podSets[key]; ok {
		return name
	}
	var addrs []netip.Addr
	for _, p := range t.members(s) {
		addrs = append(addrs, p.ips...)
	}
	name := t.addSet("pods-", key, sortAddrs(addrs))
	t.podSets[key] = name
	return name
}

// portSets returns, per port number, the set of the addresses of the pods
// s picks (only local ones if local) whose container port called name with
// protocol proto has that number.
func (t *translator) portSets(s selector, local bool, name string, proto corev1.Protocol) map[uint16]string {
	key := s.key()
	if local {
		key += " local"
	}
	key += " port " + name + "/" + string(proto)
	if sets, ok := t.portMemo[key]; ok {
		return sets
	}
	byPort := map[uint16][]netip.Addr{}
	for _, p := range t.members(s) {
		if local && !p.local {
			continue
		}
		for _, cp := range p.ports {
			if cp.Name == name && cmp.Or(cp.Protocol, corev1.ProtocolTCP) == proto && cp.ContainerPort > 0 && cp.ContainerPort <= 65535 {
				n := uint16(cp.ContainerPort)
				byPort[n] = append(byPort[n], p.ips...)
				break
			}
		}
	}
	sets := map[uint16]string{}
	for n, addrs := range byPort {
		sets[n] = t.addSet("port-", key+"="+strconv.Itoa(int(n)), sortAddrs(addrs))
	}
	t.portMemo[key] = sets
	return sets
}

// blockSet returns the interval set of an ipBlock; ok is false when the
// block can match no IPv4 address here (IPv6, malformed).
func (t *translator) blockSet(b *networkingv1.IPBlock) (string, bool) {
	if bs, ok := t.blocks[b]; ok {
		return bs.name, bs.ok
	}
	ranges, ok, err := blockRanges(b)
	bs := blockSet{ok: ok && err == nil}
	if bs.ok {
		key := "cidr " + b.CIDR
		if len(b.Except) > 0 {
			key += " except " + strings.Join(b.Except, ",")
		}
		bs.name = "cidr-" + shortHash(key)
		if _, exists := t.rs.Sets[bs.name]; !exists {
			t.rs.Sets[bs.name] = &Set{Name: bs.name, Comment: clip(key), Interval: true, Ranges: ranges}
		}
	}
	t.blocks[b] = bs
	return bs.name, bs.ok
}

func (t *translator) addSet(prefix, key string, addrs []netip.Addr) string {
	name := prefix + shortHash(key)
	if _, ok := t.rs.Sets[name]; !ok {
		t.rs.Sets[name] = &Set{Name: name, Comment: clip(key), Addrs: addrs}
	}
	return name
}
