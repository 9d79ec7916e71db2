package control

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Snapshot is the cluster state a translation reads. Translate never
// changes it; several translations may share one.
type Snapshot struct {
	Services               []*corev1.Service
	EndpointSlices         []*discoveryv1.EndpointSlice
	Pods                   []*corev1.Pod
	Namespaces             []*corev1.Namespace
	VirtualServices        []*networkingv1.VirtualService
	DestinationRules       []*networkingv1.DestinationRule
	ServiceEntries         []*networkingv1.ServiceEntry
	Sidecars               []*networkingv1.Sidecar
	PeerAuthentications    []*securityv1.PeerAuthentication
	AuthorizationPolicies  []*securityv1.AuthorizationPolicy
	RequestAuthentications []*securityv1.RequestAuthentication
	// Gateways are only read by Index.Gateways (the edge proxy).
	Gateways []*networkingv1.Gateway
}

// OutboundPolicy is Istio's meshConfig.outboundTrafficPolicy.mode.
type OutboundPolicy string

const (
	AllowAny     OutboundPolicy = "ALLOW_ANY"
	RegistryOnly OutboundPolicy = "REGISTRY_ONLY"
)

// MeshOptions are the mesh-wide settings a translation uses.
type MeshOptions struct {
	// ClusterDomain is the DNS suffix of Services (default
	// "cluster.local").
	ClusterDomain string
	// TrustDomain is the SPIFFE trust domain (default "cluster.local").
	TrustDomain string
	// RootNamespace holds mesh-wide policies (default "istio-system").
	RootNamespace string
	// Outbound is what happens to traffic to unknown destinations
	// (default AllowAny).
	Outbound OutboundPolicy
}

func (o MeshOptions) withDefaults() MeshOptions {
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.TrustDomain == "" {
		o.TrustDomain = "cluster.local"
	}
	if o.RootNamespace == "" {
		o.RootNamespace = "istio-system"
	}
	if o.Outbound == "" {
		o.Outbound = AllowAny
	}
	return o
}

// Index is a Snapshot prepared for translating many proxies: the
// services by host with their endpoints, the rules by host. Build it once
// per snapshot with NewIndex; it is read-only afterwards and safe for
// concurrent Translate calls.
type Index struct {
	opts     MeshOptions
	snap     *Snapshot
	services []*service          // sorted by host
	byHost   map[string]*service // FQDN and ServiceEntry hosts
	// drs are DestinationRules by host, oldest first.
	drs map[string][]*networkingv1.DestinationRule
	// vsByHost is the VirtualService that routes each host for
	// sidecars (the oldest valid one); vsWildcards are those with
	// wildcard hosts, oldest first.
	vsByHost    map[string]*networkingv1.VirtualService
	vsWildcards []vsHost
	podsByKey   map[string]*corev1.Pod
	// errs are problems found while indexing (warnings of every proxy).
	errs []string
	// clusterCache holds outbound clusters by name (*cachedCluster).
	clusterCache sync.Map
}

type vsHost struct {
	host string
	vs   *networkingv1.VirtualService
}

// service is a Kubernetes Service or a ServiceEntry host, as the
// translation sees it.
type service struct {
	host      string // FQDN
	namespace string
	name      string   // Kubernetes Service name; "" for ServiceEntries
	domains   []string // names a request may use, besides host
	addresses []string // ClusterIP(s) or ServiceEntry addresses
	headless  bool
	external  bool // ServiceEntry MESH_EXTERNAL
	// passthrough: connections go to their original destination
	// (headless, resolution NONE).
	passthrough bool
	selector    map[string]string
	ports       []servicePort
	created     metav1.Time
	// seName is the ServiceEntry's name, for messages.
	seName string
}

type servicePort struct {
	name       string
	port       uint32
	targetPort string // number or name (Services)
	http       bool
	grpc       bool
	endpoints  []endpoint
}

type endpoint struct {
	address string // host:port
	mesh    bool
	labels  map[string]string
}

func byCreation[T interface {
	GetCreationTimestamp() metav1.Time
	GetNamespace() string
	GetName() string
}](a, b T) int {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		if ta.Before(&tb) {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}

// NewIndex prepares snap for translation.
func NewIndex(snap *Snapshot, opts MeshOptions) *Index {
	opts = opts.withDefaults()
	x := &Index{
		opts: opts, snap: snap,
		byHost:    map[string]*service{},
		drs:       map[string][]*networkingv1.DestinationRule{},
		podsByKey: map[string]*corev1.Pod{},
	}
	for _, p := range snap.Pods {
		if p != nil {
			x.podsByKey[p.Namespace+"/"+p.Name] = p
		}
	}
	slices := x.slicesByService()
	for _, s := range snap.Services {
		if s == nil {
			continue
		}
		x.addService(s, slices[s.Namespace+"/"+s.Name])
	}
	for _, se := range sortedBy(snap.ServiceEntries) {
		x.addServiceEntry(se)
	}
	sortServices(x.services)
	for _, dr := range sortedBy(snap.DestinationRules) {
		if dr.Spec.Host == "" {
			continue
		}
		h := x.resolveHost(dr.Spec.Host, dr.Namespace)
		x.drs[h] = append(x.drs[h], dr)
	}
	x.vsByHost = map[string]*networkingv1.VirtualService{}
	for _, vs := range sortedBy(snap.VirtualServices) {
		if !appliesToMesh(vs.Spec.Gateways) {
			continue
		}
		if err := checkVS(&vs.Spec); err != nil {
			x.errs = append(x.errs, fmt.Sprintf("VirtualService %s/%s: %v; skipped", vs.Namespace, vs.Name, err))
			continue
		}
		for _, h := range vs.Spec.Hosts {
			h = x.resolveHost(h, vs.Namespace)
			if strings.HasPrefix(h, "*") {
				x.vsWildcards = append(x.vsWildcards, vsHost{h, vs})
				continue
			}
			if first, dup := x.vsByHost[h]; dup && first != vs {
				x.errs = append(x.errs, fmt.Sprintf("VirtualService %s/%s: host %s is already routed by the older VirtualService %s/%s; ignored for it",
					vs.Namespace, vs.Name, h, first.Namespace, first.Name))
				continue
			}
			x.vsByHost[h] = vs
		}
	}
	return x
}

func sortedBy[T interface {
	comparable
	GetCreationTimestamp() metav1.Time
	GetNamespace() string
	GetName() string
}](in []T) []T {
	var zero T
	out := make([]T, 0, len(in))
	for _, o := range in {
		if o != zero {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, byCreation[T])
	return out
}

func sortServices(s []*service) {
	slices.SortStableFunc(s, func(a, b *service) int { return cmp.Compare(a.host, b.host) })
}

// appliesToMesh says whether a VirtualService (or match) with these
// gateways applies to sidecars: none given, or "mesh" among them.
func appliesToMesh(gateways []string) bool {
	return len(gateways) == 0 || slices.Contains(gateways, "mesh")
}

// resolveHost expands a short name (no dot, no wildcard) in namespace ns
// to its FQDN, as Istio does for VirtualService and DestinationRule hosts.
func (x *Index) resolveHost(h, ns string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "*" || strings.Contains(h, ".") {
		return h
	}
	return h + "." + ns + ".svc." + x.opts.ClusterDomain
}

func (x *Index) slicesByService() map[string][]*discoveryv1.EndpointSlice {
	out := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range x.snap.EndpointSlices {
		if es == nil {
			continue
		}
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		out[es.Namespace+"/"+name] = append(out[es.Namespace+"/"+name], es)
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	return out
}

// podMesh says whether a pod runs a sidecar.
func podMesh(p *corev1.Pod) bool {
	_, ok := p.Annotations[meshconfig.StatusAnnotation]
	return ok
}

// labelsMatch says whether every selector label is in labels (an empty
// selector matches everything).
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
