package apiserver

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/resources"
)

// discovery answers /api, /apis and the per-group-version resource lists,
// in the legacy form and the aggregated (apidiscovery.k8s.io/v2) form. All
// documents are encoded once, up front: they never change at run time.
type discovery struct {
	docs map[string][]byte // path → legacy JSON
	agg  map[string][]byte // "/api" and "/apis" → aggregated JSON
}

const aggregatedType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

func newDiscovery(rs []resources.Resource) *discovery {
	d := &discovery{docs: map[string][]byte{}, agg: map[string][]byte{}}
	type gv struct{ group, version string }
	var order []gv
	byGV := map[gv][]resources.Resource{}
	var groups []string
	groupVersions := map[string][]string{}
	for _, r := range rs {
		key := gv{r.Group, r.Version}
		if _, seen := byGV[key]; !seen {
			order = append(order, key)
			if _, g := groupVersions[r.Group]; !g {
				groups = append(groups, r.Group)
			}
			groupVersions[r.Group] = append(groupVersions[r.Group], r.Version)
		}
		byGV[key] = append(byGV[key], r)
	}
	must := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	d.docs["/api"] = must(&metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: groupVersions[""],
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: ""}},
	})
	groupList := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range groups {
		if g == "" {
			continue
		}
		group := metav1.APIGroup{Name: g}
		for _, v := range groupVersions[g] {
			group.Versions = append(group.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g + "/" + v, Version: v})
		}
		group.PreferredVersion = group.Versions[0]
		groupList.Groups = append(groupList.Groups, group)
		gcopy := group
		gcopy.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		d.docs["/apis/"+g] = must(&gcopy)
	}
	d.docs["/apis"] = must(groupList)

	coreAgg := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	groupsAgg := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: coreAgg.TypeMeta}
	aggIndex := map[string]int{}
	for _, key := range order {
		gvStr := key.version
		path := "/api/" + key.version
		if key.group != "" {
			gvStr = key.group + "/" + key.version
			path = "/apis/" + gvStr
		}
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gvStr}
		verDisc := apidiscoveryv2.APIVersionDiscovery{Version: key.version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, r := range byGV[key] {
			list.APIResources = append(list.APIResources, legacyResources(r)...)
			verDisc.Resources = append(verDisc.Resources, aggregatedResource(r))
		}
		d.docs[path] = must(list)
		target := groupsAgg
		if key.group == "" {
			target = coreAgg
		}
		i, ok := aggIndex[key.group]
		if !ok {
			i = len(target.Items)
			aggIndex[key.group] = i
			target.Items = append(target.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: key.group}})
		}
		target.Items[i].Versions = append(target.Items[i].Versions, verDisc)
	}
	d.agg["/api"] = must(coreAgg)
	d.agg["/apis"] = must(groupsAgg)
	return d
}

func legacyResources(r resources.Resource) []metav1.APIResource {
	main := metav1.APIResource{
		Name: r.Plural, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind,
		Verbs: r.AllVerbs(), ShortNames: r.ShortNames, Categories: r.Categories,
	}
	out := []metav1.APIResource{main}
	if r.Status {
		out = append(out, metav1.APIResource{Name: r.Plural + "/status", Namespaced: r.Namespaced, Kind: r.Kind, Verbs: []string{"get", "patch", "update"}})
	}
	if r.Scale {
		out = append(out, metav1.APIResource{Name: r.Plural + "/scale", Namespaced: r.Namespaced, Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: []string{"get", "patch", "update"}})
	}
	if r.Kind == "Namespace" {
		out = append(out, metav1.APIResource{Name: "namespaces/finalize", Kind: "Namespace", Verbs: []string{"update"}})
	}
	if r.Group == csrGK.Group && r.Kind == csrGK.Kind {
		out = append(out, metav1.APIResource{Name: r.Plural + "/approval", Kind: r.Kind, Verbs: []string{"get", "patch", "update"}})
	}
	if r.Kind == "Pod" && r.Group == "" {
		out = append(out, metav1.APIResource{Name: "pods/eviction", Namespaced: true, Group: "policy", Version: "v1", Kind: "Eviction", Verbs: []string{"create"}})
	}
	return out
}

func aggregatedResource(r resources.Resource) apidiscoveryv2.APIResourceDiscovery {
	scope := apidiscoveryv2.ScopeCluster
	if r.Namespaced {
		scope = apidiscoveryv2.ScopeNamespace
	}
	gvk := r.GVK()
	d := apidiscoveryv2.APIResourceDiscovery{
		Resource: r.Plural, ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Scope: scope, SingularResource: r.Singular, Verbs: r.AllVerbs(), ShortNames: r.ShortNames, Categories: r.Categories,
	}
	sub := func(name string, kind metav1.GroupVersionKind, verbs ...string) {
		d.Subresources = append(d.Subresources, apidiscoveryv2.APISubresourceDiscovery{Subresource: name, ResponseKind: &kind, Verbs: verbs})
	}
	if r.Status {
		sub("status", *d.ResponseKind, "get", "patch", "update")
	}
	if r.Scale {
		sub("scale", metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, "get", "patch", "update")
	}
	if r.Kind == "Namespace" {
		sub("finalize", *d.ResponseKind, "update")
	}
	if r.Group == csrGK.Group && r.Kind == csrGK.Kind {
		sub("approval", *d.ResponseKind, "get", "patch", "update")
	}
	if r.Kind == "Pod" && r.Group == "" {
		sub("eviction", metav1.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, "create")
	}
	return d
}

// serve answers a discovery request; it reports false for other paths.
func (d *discovery) serve(w http.ResponseWriter, r *http.Request) bool {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if agg, ok := d.agg[path]; ok && wantsAggregated(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", aggregatedType)
		w.Header().Set("Vary", "Accept")
		w.Write(agg)
		return true
	}
	doc, ok := d.docs[path]
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vary", "Accept")
	w.Write(doc)
	return true
}

func wantsAggregated(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "application/json" && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return true
		}
		if mt == "application/json" && params["as"] == "" {
			return false
		}
	}
	return false
}
