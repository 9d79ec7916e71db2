// Package istiosubsets is an admission plugin that warns — never rejects,
// as Istio does not — when a VirtualService routes to a destination subset
// that no DestinationRule defines: requests routed there fail until one
// does. The warning is a "Warning: 299" header naming the field, which
// kubectl prints.
//
// The plugin reads DestinationRules through an informer on a loopback
// Istio clientset registered on the daemon's informer factory; when the
// cache has no match (or has not filled yet) it asks the API directly for
// the VirtualService's namespace, so a DestinationRule applied just
// before counts. Only the daemon wires it; tests may import it.
package istiosubsets

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	versioned "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/apiserver"
)

// DomainSuffix is the cluster domain short host names resolve in.
const DomainSuffix = "cluster.local"

// Plugin is the subset-warning admission plugin.
type Plugin struct {
	client  versioned.Interface
	indexer cache.Indexer
	synced  cache.InformerSynced
	log     *slog.Logger
}

var _ apiserver.Validator = (*Plugin)(nil)

// New returns the plugin. It registers a DestinationRule informer
// (reading through client) on factory; the caller starts the factory. It
// does no I/O.
func New(client versioned.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Plugin {
	inf := factory.InformerFor(&networkingv1.DestinationRule{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return istioinformers.NewDestinationRuleInformer(client, metav1.NamespaceAll, 0, cache.Indexers{})
	})
	return &Plugin{client: client, indexer: inf.GetIndexer(), synced: inf.HasSynced, log: log.With("component", "admission-istiosubsets")}
}

// Validate adds a warning for each destination subset of a VirtualService
// that no DestinationRule defines. It never fails a write.
func (p *Plugin) Validate(ctx context.Context, a *apiserver.Attributes) error {
	if a.Subresource != "" || a.Kind.Group != "networking.istio.io" || a.Kind.Kind != "VirtualService" {
		return nil
	}
	vs, ok := a.Object.(*networkingv1.VirtualService)
	if !ok {
		return nil
	}
	refs := Subsets(&vs.Spec)
	if len(refs) == 0 {
		return nil
	}
	var cached []*networkingv1.DestinationRule
	if p.synced() {
		for _, o := range p.indexer.List() {
			if dr, ok := o.(*networkingv1.DestinationRule); ok {
				cached = append(cached, dr)
			}
		}
	}
	var live []*networkingv1.DestinationRule
	liveRead := false
	for _, r := range refs {
		host := FQDN(r.Host, vs.Namespace)
		if Defined(cached, host, r.Subset) {
			continue
		}
		if !liveRead {
			liveRead = true
			list, err := p.client.NetworkingV1().DestinationRules(vs.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				p.log.Debug("listing destination rules", "namespace", vs.Namespace, "err", err)
				return nil // a warning is not worth failing or delaying the write
			}
			live = list.Items
		}
		if Defined(live, host, r.Subset) {
			continue
		}
		apiserver.AddWarning(ctx, fmt.Sprintf("%s: subset %q of host %q is not defined by any DestinationRule; requests routed to it fail until one defines it",
			r.Path, r.Subset, r.Host))
	}
	return nil
}

// Ref is one destination that names a subset.
type Ref struct {
	Path         *field.Path // the destination's subset field
	Host, Subset string
}

// Subsets lists the destinations of vs that name a subset.
func Subsets(vs *networkingapi.VirtualService) []Ref {
	var out []Ref
	add := func(d *networkingapi.Destination, p *field.Path) {
		if d != nil && d.Subset != "" && d.Host != "" {
			out = append(out, Ref{Path: p.Child("subset"), Host: d.Host, Subset: d.Subset})
		}
	}
	spec := field.NewPath("spec")
	for i, h := range vs.Http {
		hp := spec.Child("http").Index(i)
		for j, r := range h.GetRoute() {
			add(r.GetDestination(), hp.Child("route").Index(j).Child("destination"))
		}
		add(h.GetMirror(), hp.Child("mirror"))
		for j, m := range h.GetMirrors() {
			add(m.GetDestination(), hp.Child("mirrors").Index(j).Child("destination"))
		}
	}
	for i, t := range vs.Tcp {
		for j, r := range t.GetRoute() {
			add(r.GetDestination(), spec.Child("tcp").Index(i).Child("route").Index(j).Child("destination"))
		}
	}
	for i, t := range vs.Tls {
		for j, r := range t.GetRoute() {
			add(r.GetDestination(), spec.Child("tls").Index(i).Child("route").Index(j).Child("destination"))
		}
	}
	return out
}

// FQDN resolves a short host name (no dot) in namespace, as Istio does.
func FQDN(host, namespace string) string {
	if strings.Contains(host, ".") || host == "*" {
		return host
	}
	return host + "." + namespace + ".svc." + DomainSuffix
}

// Defined reports whether a DestinationRule among drs for host (resolved
// in its own namespace; a leading "*." wildcard matches) defines subset.
func Defined(drs []*networkingv1.DestinationRule, host, subset string) bool {
	for _, dr := range drs {
		if !hostMatches(FQDN(dr.Spec.Host, dr.Namespace), host) {
			continue
		}
		for _, s := range dr.Spec.Subsets {
			if s.GetName() == subset {
				return true
			}
		}
	}
	return false
}

func hostMatches(pattern, host string) bool {
	if pattern == host || pattern == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix)
	}
	return false
}
