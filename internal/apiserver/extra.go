package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ExtraGroup is an API group version served by a handler of its own
// rather than from the store (metrics.k8s.io, by package metricsapi):
// the server lists it in discovery (/apis, /apis/<group>,
// /apis/<group>/<version> and the aggregated form) and hands its
// resource requests, /apis/<group>/<version>/..., to Handler once the
// caller is authenticated. The handler answers everything else itself:
// verbs, selectors, content negotiation, Status errors.
type ExtraGroup struct {
	GroupVersion schema.GroupVersion
	// Resources are listed in discovery as given; a name with a slash
	// ("pods/status") is a subresource of its parent.
	Resources []metav1.APIResource
	Handler   http.Handler
}

// serveExtra hands a resource request of an extra group to its handler;
// it reports false for other requests.
func (s *Server) serveExtra(w http.ResponseWriter, r *http.Request, ri requestInfo) bool {
	for _, g := range s.cfg.Extra {
		if ri.group == g.GroupVersion.Group && ri.version == g.GroupVersion.Version {
			g.Handler.ServeHTTP(w, r)
			return true
		}
	}
	return false
}

// addExtra lists the extra groups in the discovery documents. A group
// version the store already serves, or one without a group name or
// handler, is an error.
func (d *discovery) addExtra(extra []ExtraGroup) error {
	if len(extra) == 0 {
		return nil
	}
	var groups metav1.APIGroupList
	if err := json.Unmarshal(d.docs["/apis"], &groups); err != nil {
		return err
	}
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(d.agg["/apis"], &agg); err != nil {
		return err
	}
	for _, g := range extra {
		gv := g.GroupVersion
		path := "/apis/" + gv.String()
		switch {
		case gv.Group == "" || gv.Version == "" || g.Handler == nil:
			return fmt.Errorf("extra API group %q: a group, a version and a handler are required", gv)
		case d.docs[path] != nil:
			return fmt.Errorf("extra API group %s is already served", gv)
		}
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: gv.String(), APIResources: g.Resources}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		d.docs[path] = b

		version := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		i := indexOf(groups.Groups, func(x metav1.APIGroup) bool { return x.Name == gv.Group })
		if i < 0 {
			groups.Groups = append(groups.Groups, metav1.APIGroup{Name: gv.Group, PreferredVersion: version})
			i = len(groups.Groups) - 1
		}
		groups.Groups[i].Versions = append(groups.Groups[i].Versions, version)
		group := groups.Groups[i]
		group.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		if d.docs["/apis/"+gv.Group], err = json.Marshal(&group); err != nil {
			return err
		}

		j := indexOf(agg.Items, func(x apidiscoveryv2.APIGroupDiscovery) bool { return x.Name == gv.Group })
		if j < 0 {
			agg.Items = append(agg.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gv.Group}})
			j = len(agg.Items) - 1
		}
		agg.Items[j].Versions = append(agg.Items[j].Versions, apidiscoveryv2.APIVersionDiscovery{
			Version: gv.Version, Resources: aggregatedExtra(gv, g.Resources), Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
		})
	}
	var err error
	if d.docs["/apis"], err = json.Marshal(&groups); err != nil {
		return err
	}
	d.agg["/apis"], err = json.Marshal(&agg)
	return err
}

// aggregatedExtra converts legacy resource entries to the aggregated
// form, subresources under their parents.
func aggregatedExtra(gv schema.GroupVersion, rs []metav1.APIResource) []apidiscoveryv2.APIResourceDiscovery {
	var out []apidiscoveryv2.APIResourceDiscovery
	kind := func(r metav1.APIResource) *metav1.GroupVersionKind {
		k := metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind}
		if r.Group != "" || r.Version != "" {
			k.Group, k.Version = r.Group, r.Version
		}
		return &k
	}
	for _, r := range rs {
		if strings.Contains(r.Name, "/") {
			continue
		}
		scope := apidiscoveryv2.ScopeCluster
		if r.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		out = append(out, apidiscoveryv2.APIResourceDiscovery{
			Resource: r.Name, ResponseKind: kind(r), Scope: scope, SingularResource: r.SingularName,
			Verbs: r.Verbs, ShortNames: r.ShortNames, Categories: r.Categories,
		})
	}
	for _, r := range rs {
		parent, sub, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue
		}
		if i := indexOf(out, func(x apidiscoveryv2.APIResourceDiscovery) bool { return x.Resource == parent }); i >= 0 {
			out[i].Subresources = append(out[i].Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource: sub, ResponseKind: kind(r), Verbs: r.Verbs,
			})
		}
	}
	return out
}

func indexOf[T any](s []T, match func(T) bool) int {
	for i, x := range s {
		if match(x) {
			return i
		}
	}
	return -1
}
