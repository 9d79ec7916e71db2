// Package usage measures what objects charge against a ResourceQuota, the
// way upstream's quota evaluators (k8s.io/apiserver/pkg/quota/v1 and
// pkg/quota/v1/evaluator/core) do: one Evaluator per resource — pods
// (counts and compute), services (counts, node ports, load balancers),
// persistentvolumeclaims (counts and storage, per storage class), and an
// object-count evaluator (count/<resource>.<group>, plus the legacy names
// configmaps, secrets, resourcequotas, replicationcontrollers) for
// everything else — and the ResourceList arithmetic quota checks need.
//
// It is pure: no I/O, the time is passed in. The ResourceQuota admission
// plugin and the ResourceQuota controller import it.
package usage

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Evaluator knows what the objects of one resource charge.
type Evaluator interface {
	// GroupResource is the resource whose objects this evaluator measures.
	GroupResource() schema.GroupResource
	// MatchingResources returns the names in names this evaluator charges.
	MatchingResources(names []corev1.ResourceName) []corev1.ResourceName
	// Usage is what obj charges at time now.
	Usage(obj runtime.Object, now time.Time) (corev1.ResourceList, error)
	// MatchesScope reports whether obj falls under one scope selector of a
	// quota.
	MatchesScope(sel corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error)
	// Constraints returns an error naming what obj lacks for a quota that
	// limits required (pods must state cpu and memory requests and limits
	// a quota limits).
	Constraints(required []corev1.ResourceName, obj runtime.Object) error
	// ChargesUpdates reports whether an update can change the usage (so
	// admission checks updates, not only creates).
	ChargesUpdates() bool
}

// For returns the evaluator for gr: a specific one for pods, services
// and persistentvolumeclaims, an object-count one otherwise.
func For(gr schema.GroupResource) Evaluator {
	if gr.Group == "" {
		switch gr.Resource {
		case "pods":
			return podEvaluator{}
		case "services":
			return serviceEvaluator{}
		case "persistentvolumeclaims":
			return pvcEvaluator{}
		}
	}
	return countEvaluator{gr: gr, legacy: legacyCountNames[gr]}
}

// legacyCountNames are the names upstream kept from before count/*: each
// counts every object of its resource.
var legacyCountNames = map[schema.GroupResource]corev1.ResourceName{
	{Resource: "configmaps"}:             corev1.ResourceConfigMaps,
	{Resource: "secrets"}:                corev1.ResourceSecrets,
	{Resource: "resourcequotas"}:         corev1.ResourceQuotas,
	{Resource: "replicationcontrollers"}: corev1.ResourceReplicationControllers,
}

// CountName is the object-count name of gr: count/<resource>.<group>, or
// count/<resource> in the core group.
func CountName(gr schema.GroupResource) corev1.ResourceName {
	if gr.Group == "" {
		return corev1.ResourceName("count/" + gr.Resource)
	}
	return corev1.ResourceName("count/" + gr.Resource + "." + gr.Group)
}

// ParseCountName returns the resource a count/ name counts.
func ParseCountName(name corev1.ResourceName) (schema.GroupResource, bool) {
	rest, ok := strings.CutPrefix(string(name), "count/")
	if !ok || rest == "" {
		return schema.GroupResource{}, false
	}
	res, group, _ := strings.Cut(rest, ".")
	if res == "" {
		return schema.GroupResource{}, false
	}
	return schema.GroupResource{Group: group, Resource: res}, true
}

// GroupResources returns the resources whose objects a quota limiting
// names charges: the count/ names' resources and the resources behind the
// legacy and compute names.
func GroupResources(names []corev1.ResourceName) []schema.GroupResource {
	seen := map[schema.GroupResource]bool{}
	var out []schema.GroupResource
	add := func(gr schema.GroupResource) {
		if !seen[gr] {
			seen[gr] = true
			out = append(out, gr)
		}
	}
	for _, n := range names {
		if gr, ok := ParseCountName(n); ok {
			add(gr)
		}
	}
	for _, gr := range []schema.GroupResource{{Resource: "pods"}, {Resource: "services"}, {Resource: "persistentvolumeclaims"},
		{Resource: "configmaps"}, {Resource: "secrets"}, {Resource: "resourcequotas"}, {Resource: "replicationcontrollers"}} {
		if len(For(gr).MatchingResources(names)) > 0 {
			add(gr)
		}
	}
	return out
}

// ScopeSelectors returns a quota's scopes and scope selector as one list
// of requirements.
func ScopeSelectors(q *corev1.ResourceQuota) []corev1.ScopedResourceSelectorRequirement {
	var out []corev1.ScopedResourceSelectorRequirement
	for _, s := range q.Spec.Scopes {
		out = append(out, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		out = append(out, q.Spec.ScopeSelector.MatchExpressions...)
	}
	return out
}

// MatchesScopes reports whether obj falls under every selector.
func MatchesScopes(e Evaluator, sels []corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error) {
	for _, sel := range sels {
		ok, err := e.MatchesScope(sel, obj)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Matches reports whether quota q limits obj: it limits one of the
// resources e charges (by its status.hard, as admission sees it) and obj
// falls under all of its scopes.
func Matches(q *corev1.ResourceQuota, e Evaluator, obj runtime.Object) (bool, error) {
	if len(e.MatchingResources(Names(q.Status.Hard))) == 0 {
		return false, nil
	}
	return MatchesScopes(e, ScopeSelectors(q), obj)
}

// noScope is the scope test of resources no scope applies to.
func noScope(corev1.ScopedResourceSelectorRequirement, runtime.Object) (bool, error) {
	return false, nil
}

// countEvaluator counts objects.
type countEvaluator struct {
	gr     schema.GroupResource
	legacy corev1.ResourceName // "" when the resource has no legacy name
}

func (e countEvaluator) GroupResource() schema.GroupResource { return e.gr }

func (e countEvaluator) names() []corev1.ResourceName {
	if e.legacy == "" {
		return []corev1.ResourceName{CountName(e.gr)}
	}
	return []corev1.ResourceName{CountName(e.gr), e.legacy}
}

func (e countEvaluator) MatchingResources(names []corev1.ResourceName) []corev1.ResourceName {
	return Intersect(names, e.names())
}

func (e countEvaluator) Usage(runtime.Object, time.Time) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for _, n := range e.names() {
		out[n] = one()
	}
	return out, nil
}

func (e countEvaluator) MatchesScope(sel corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error) {
	return noScope(sel, obj)
}

func (countEvaluator) Constraints([]corev1.ResourceName, runtime.Object) error { return nil }
func (countEvaluator) ChargesUpdates() bool                                    { return false }

// typeError reports an object of the wrong type for an evaluator.
func typeError(want string, obj runtime.Object) error {
	return fmt.Errorf("expected %s, got %T", want, obj)
}
