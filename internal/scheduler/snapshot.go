package scheduler

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// PodInfo is a pod with what scheduling computes from it once: requests
// and parsed affinity terms.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests is what the pod reserves on its node; NonZero the same with
	// upstream's defaults for containers without CPU or memory requests.
	Requests, NonZero Resource

	RequiredAffinity, RequiredAntiAffinity   []AffinityTerm
	PreferredAffinity, PreferredAntiAffinity []WeightedAffinityTerm
	// ParseErr is set when a label selector in the pod's affinity does not
	// parse; such terms match nothing.
	ParseErr error
}

// AffinityTerm is a parsed PodAffinityTerm: which pods it selects (in which
// namespaces) and the topology key they are grouped by.
type AffinityTerm struct {
	Namespaces        sets.Set[string]
	NamespaceSelector labels.Selector // nil: only Namespaces
	Selector          labels.Selector
	TopologyKey       string
}

// WeightedAffinityTerm is a preferred term with its weight.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// Matches reports whether pod (whose namespace has nsLabels) is selected by
// the term.
func (t *AffinityTerm) Matches(pod *corev1.Pod, nsLabels labels.Set) bool {
	if !t.Namespaces.Has(pod.Namespace) && (t.NamespaceSelector == nil || !t.NamespaceSelector.Matches(nsLabels)) {
		return false
	}
	return t.Selector.Matches(labels.Set(pod.Labels))
}

// NewPodInfo computes a pod's scheduling view.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod, Requests: podRequests(pod), NonZero: podNonZeroRequests(pod)}
	a := pod.Spec.Affinity
	if a == nil {
		return pi
	}
	if pa := a.PodAffinity; pa != nil {
		pi.RequiredAffinity = pi.terms(pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.PreferredAffinity = pi.weightedTerms(pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		pi.RequiredAntiAffinity = pi.terms(pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.PreferredAntiAffinity = pi.weightedTerms(pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return pi
}

// hasAffinity reports whether the pod has any pod (anti-)affinity term.
func (pi *PodInfo) hasAffinity() bool {
	return len(pi.RequiredAffinity)+len(pi.RequiredAntiAffinity)+len(pi.PreferredAffinity)+len(pi.PreferredAntiAffinity) > 0
}

func (pi *PodInfo) terms(in []corev1.PodAffinityTerm) []AffinityTerm {
	out := make([]AffinityTerm, 0, len(in))
	for i := range in {
		t, err := newAffinityTerm(pi.Pod, &in[i])
		if err != nil {
			pi.ParseErr = err
			continue
		}
		out = append(out, t)
	}
	return out
}

func (pi *PodInfo) weightedTerms(in []corev1.WeightedPodAffinityTerm) []WeightedAffinityTerm {
	out := make([]WeightedAffinityTerm, 0, len(in))
	for i := range in {
		t, err := newAffinityTerm(pi.Pod, &in[i].PodAffinityTerm)
		if err != nil {
			pi.ParseErr = err
			continue
		}
		out = append(out, WeightedAffinityTerm{AffinityTerm: t, Weight: in[i].Weight})
	}
	return out
}

// newAffinityTerm parses a term of pod. Empty namespaces and no namespace
// selector mean the pod's own namespace; matchLabelKeys and
// mismatchLabelKeys add requirements on the pod's own label values.
func newAffinityTerm(pod *corev1.Pod, term *corev1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, err
	}
	for _, key := range term.MatchLabelKeys {
		if v, ok := pod.Labels[key]; ok {
			if r, err := labels.NewRequirement(key, selection.In, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, key := range term.MismatchLabelKeys {
		if v, ok := pod.Labels[key]; ok {
			if r, err := labels.NewRequirement(key, selection.NotIn, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	t := AffinityTerm{Selector: sel, TopologyKey: term.TopologyKey, Namespaces: sets.New(term.Namespaces...)}
	if term.NamespaceSelector != nil {
		if t.NamespaceSelector, err = metav1.LabelSelectorAsSelector(term.NamespaceSelector); err != nil {
			return AffinityTerm{}, err
		}
	} else if len(term.Namespaces) == 0 {
		t.Namespaces.Insert(pod.Namespace)
	}
	return t, nil
}

// NodeInfo is a node with the pods bound (or assumed) on it and their
// totals.
type NodeInfo struct {
	Node *corev1.Node
	Pods []*PodInfo
	// PodsWithAffinity have some pod (anti-)affinity term;
	// PodsWithRequiredAntiAffinity a required anti-affinity term.
	PodsWithAffinity, PodsWithRequiredAntiAffinity []*PodInfo
	// Requested sums the pods' requests; NonZeroRequested their non-zero
	// requests.
	Requested, NonZeroRequested Resource
	// Allocatable is the node's status.allocatable.
	Allocatable Resource
	UsedPorts   HostPorts
}

// NewNodeInfo returns the info of node with pods on it.
func NewNodeInfo(node *corev1.Node, pods ...*corev1.Pod) *NodeInfo {
	n := &NodeInfo{UsedPorts: HostPorts{}}
	n.SetNode(node)
	for _, p := range pods {
		n.AddPod(NewPodInfo(p))
	}
	return n
}

// SetNode replaces the node object.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.Node = node
	if node != nil {
		n.Allocatable = resourceOf(node.Status.Allocatable)
	} else {
		n.Allocatable = Resource{}
	}
}

// AddPod accounts for a pod on the node.
func (n *NodeInfo) AddPod(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.hasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinity) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.Requested.plus(pi.Requests)
	n.NonZeroRequested.plus(pi.NonZero)
	n.UsedPorts.addPod(pi.Pod)
}

// RemovePod removes the pod with uid; it reports whether it was there.
func (n *NodeInfo) RemovePod(uid types.UID) bool {
	i := slices.IndexFunc(n.Pods, func(p *PodInfo) bool { return p.Pod.UID == uid })
	if i < 0 {
		return false
	}
	pi := n.Pods[i]
	n.Pods = slices.Delete(n.Pods, i, i+1)
	isUID := func(p *PodInfo) bool { return p.Pod.UID == uid }
	n.PodsWithAffinity = slices.DeleteFunc(n.PodsWithAffinity, isUID)
	n.PodsWithRequiredAntiAffinity = slices.DeleteFunc(n.PodsWithRequiredAntiAffinity, isUID)
	n.Requested.minus(pi.Requests)
	n.NonZeroRequested.minus(pi.NonZero)
	n.UsedPorts = HostPorts{}
	for _, p := range n.Pods {
		n.UsedPorts.addPod(p.Pod)
	}
	return true
}

// clone copies the node info deeply enough for pods to be added or removed
// without touching n (the pods themselves are shared).
func (n *NodeInfo) clone() *NodeInfo {
	c := NewNodeInfo(n.Node)
	for _, p := range n.Pods {
		c.AddPod(p)
	}
	return c
}

// HostPorts are the host ports in use on a node: host IP → protocol/port.
type HostPorts map[string]map[protocolPort]struct{}

type protocolPort struct {
	protocol string
	port     int32
}

const anyIP = "0.0.0.0"

// normalizePort applies the defaults: any IP, TCP.
func normalizePort(ip string, proto corev1.Protocol, port int32) (string, protocolPort) {
	if ip == "" {
		ip = anyIP
	}
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return ip, protocolPort{protocol: string(proto), port: port}
}

func (h HostPorts) add(ip string, proto corev1.Protocol, port int32) {
	if port <= 0 {
		return
	}
	ip, pp := normalizePort(ip, proto, port)
	if h[ip] == nil {
		h[ip] = map[protocolPort]struct{}{}
	}
	h[ip][pp] = struct{}{}
}

func (h HostPorts) addPod(pod *corev1.Pod) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			h.add(p.HostIP, p.Protocol, p.HostPort)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			for _, p := range c.Ports {
				h.add(p.HostIP, p.Protocol, p.HostPort)
			}
		}
	}
}

// conflicts reports whether a host port is taken: the same protocol and
// port on the same IP, or on any IP when either side binds 0.0.0.0.
func (h HostPorts) conflicts(ip string, proto corev1.Protocol, port int32) bool {
	if port <= 0 {
		return false
	}
	ip, pp := normalizePort(ip, proto, port)
	if ip == anyIP {
		for _, m := range h {
			if _, ok := m[pp]; ok {
				return true
			}
		}
		return false
	}
	for _, key := range []string{anyIP, ip} {
		if _, ok := h[key][pp]; ok {
			return true
		}
	}
	return false
}

// Snapshot is the cluster state one scheduling cycle works on: the nodes
// (with the pods on them) in a stable order, and the labels of namespaces
// for affinity terms with namespace selectors.
type Snapshot struct {
	Nodes           []*NodeInfo
	NamespaceLabels map[string]labels.Set
}

// NewSnapshot builds a snapshot from nodes and pods; pods name their node
// in spec.nodeName (others are ignored). Tests use it; the scheduler's
// cache keeps its node infos up to date instead.
func NewSnapshot(nodes []*corev1.Node, pods []*corev1.Pod) *Snapshot {
	byName := map[string]*NodeInfo{}
	s := &Snapshot{}
	for _, n := range nodes {
		ni := NewNodeInfo(n)
		byName[n.Name] = ni
		s.Nodes = append(s.Nodes, ni)
	}
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(NewPodInfo(p))
		}
	}
	return s
}

// nsLabels returns the labels of a namespace (nil when unknown).
func (s *Snapshot) nsLabels(ns string) labels.Set { return s.NamespaceLabels[ns] }
