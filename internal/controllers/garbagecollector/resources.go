package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/resources"
)

// table is the set of resources the collector watches, one version per
// group and resource, and the map from owner references to them.
type table struct {
	list   []resources.Resource
	byKind map[schema.GroupKind]int // index into list
}

// newTable picks, for every group/resource in all that can be listed and
// watched, the entry served in its storage version (autoscaling/v2 for
// HPAs).
func newTable(all []resources.Resource) table {
	t := table{byKind: map[schema.GroupKind]int{}}
	for _, r := range all {
		verbs := r.AllVerbs()
		if !slices.Contains(verbs, "list") || !slices.Contains(verbs, "watch") {
			continue
		}
		if r.StorageGVK().Version != r.Version {
			continue // another entry serves the stored version
		}
		gk := schema.GroupKind{Group: r.Group, Kind: r.Kind}
		if _, dup := t.byKind[gk]; dup {
			continue
		}
		t.byKind[gk] = len(t.list)
		t.list = append(t.list, r)
	}
	return t
}

// forRef finds the resource an owner reference points at. The version in
// the reference does not matter: every version of a kind names the same
// objects.
func (t table) forRef(ref metav1.OwnerReference) (int, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return 0, false
	}
	i, ok := t.byKind[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	return i, ok
}

// ownerNamespace is where the owner a reference names lives, seen from a
// dependent in namespace ns: namespaced owners share the dependent's
// namespace, cluster-scoped owners have none. ok is false for a namespaced
// owner of a cluster-scoped dependent, which can never exist.
func (t table) ownerNamespace(res int, ns string) (string, bool) {
	if !t.list[res].Namespaced {
		return "", true
	}
	return ns, ns != ""
}
