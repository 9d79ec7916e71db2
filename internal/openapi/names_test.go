package openapi

import (
	"net/http"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// TestDefinitionsComplete checks that every schema the generated
// definitions reference is generated too (see hack/update-openapi.sh).
func TestDefinitionsComplete(t *testing.T) {
	var refs []string
	defs := GetOpenAPIDefinitions(func(name string) spec.Ref {
		refs = append(refs, name)
		return spec.MustCreateRef("#/definitions/" + name)
	})
	for name, def := range defs {
		for _, dep := range def.Dependencies {
			if _, ok := defs[dep]; !ok {
				t.Errorf("%s depends on %s, which has no definition", name, dep)
			}
		}
	}
	for _, ref := range refs {
		if _, ok := defs[ref]; !ok {
			t.Errorf("reference to %s, which has no definition", ref)
		}
	}
}

func TestDefinitionName(t *testing.T) {
	n, err := newNames()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
		wantKinds      []string // group/version/kind in extension order
	}{
		{"kind", "io.k8s.api.apps.v1.Deployment", "io.k8s.api.apps.v1.Deployment", []string{"apps/v1/Deployment"}},
		{"not a kind", "io.k8s.api.apps.v1.DeploymentSpec", "io.k8s.api.apps.v1.DeploymentSpec", nil},
		{"unversioned meta kind", "io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.Status", []string{"/v1/Status"}},
		{"go name", "k8s.io/api/core/v1.Pod", "io.k8s.api.core.v1.Pod", []string{"/v1/Pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ext := n.definitionName(tt.in)
			if got != tt.want {
				t.Errorf("name = %q, want %q", got, tt.want)
			}
			var kinds []string
			if gvks, ok := ext[extGVK].([]any); ok {
				for _, g := range gvks {
					m := g.(map[string]any)
					kinds = append(kinds, m["group"].(string)+"/"+m["version"].(string)+"/"+m["kind"].(string))
				}
			}
			if !slices.Equal(kinds, tt.wantKinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.wantKinds)
			}
		})
	}
}

func TestOperationIDAndTags(t *testing.T) {
	tests := []struct {
		name, op, path, wantID, wantTag string
	}{
		{"core namespaced", "readNamespacedPod", "/api/v1/namespaces/{namespace}/pods/{name}", "readCoreV1NamespacedPod", "core_v1"},
		{"group", "patchNamespacedDeploymentScale", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "patchAppsV1NamespacedDeploymentScale", "apps_v1"},
		{"k8s.io group", "listIngressForAllNamespaces", "/apis/networking.k8s.io/v1/ingresses", "listNetworkingV1IngressForAllNamespaces", "networking_v1"},
		{"dotted group", "readClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", "readRbacAuthorizationV1ClusterRole", "rbacAuthorization_v1"},
		{"delete collection", "deletecollectionNamespacedLease", "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", "deleteCoordinationV1CollectionNamespacedLease", "coordination_v1"},
		{"resource list", "getAPIResources", "/apis/autoscaling/v2/", "getAutoscalingV2APIResources", "autoscaling_v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, tags, err := operationIDAndTags(&route{operation: tt.op, path: tt.path})
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID || !slices.Equal(tags, []string{tt.wantTag}) {
				t.Errorf("got %q %v, want %q [%s]", id, tags, tt.wantID, tt.wantTag)
			}
		})
	}
	if _, _, err := operationIDAndTags(&route{operation: "frobnicate", path: "/api/v1/pods"}); err == nil {
		t.Error("operation without a verb accepted")
	}
}

func TestArticle(t *testing.T) {
	for noun, want := range map[string]string{
		"Deployment": "create a Deployment",
		"Ingress":    "create an Ingress",
		"Endpoints":  "create Endpoints",
		"Event":      "create an Event",
	} {
		if got := "create" + article(noun) + noun; got != want {
			t.Errorf("%s: %q, want %q", noun, got, want)
		}
	}
}

func TestOptionParams(t *testing.T) {
	tests := []struct {
		name    string
		opts    documented
		exclude []string
		want    []string // name:type
	}{
		{"create", metav1.CreateOptions{}, nil, []string{"dryRun:string", "fieldManager:string", "fieldValidation:string"}},
		{"patch", metav1.PatchOptions{}, nil, []string{"dryRun:string", "force:boolean", "fieldManager:string", "fieldValidation:string"}},
		{"delete skips preconditions", metav1.DeleteOptions{}, []string{"ignoreStoreReadErrorWithClusterBreakingPotential"},
			[]string{"gracePeriodSeconds:integer", "orphanDependents:boolean", "propagationPolicy:string", "dryRun:string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range optionParams(tt.opts, tt.exclude...) {
				got = append(got, p.name+":"+p.dataType)
				if p.description == "" {
					t.Errorf("%s has no description", p.name)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRoutesFollowVerbs checks a resource gets exactly the operations its
// verbs allow (Namespace has no deletecollection).
func TestRoutesFollowVerbs(t *testing.T) {
	n, err := newNames()
	if err != nil {
		t.Fatal(err)
	}
	routes, err := resourceRoutes(Resource{Version: "v1", Kind: "Namespace", Plural: "namespaces", Status: true,
		Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}}, n)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, r.method+" "+r.path+" "+r.metadata[extAction].(string))
	}
	want := []string{
		http.MethodGet + " /api/v1/namespaces list",
		http.MethodGet + " /api/v1/watch/namespaces watchlist",
		http.MethodGet + " /api/v1/watch/namespaces/{name} watch",
		http.MethodPost + " /api/v1/namespaces post",
		http.MethodGet + " /api/v1/namespaces/{name} get",
		http.MethodPut + " /api/v1/namespaces/{name} put",
		http.MethodPatch + " /api/v1/namespaces/{name} patch",
		http.MethodDelete + " /api/v1/namespaces/{name} delete",
		http.MethodGet + " /api/v1/namespaces/{name}/status get",
		http.MethodPut + " /api/v1/namespaces/{name}/status put",
		http.MethodPatch + " /api/v1/namespaces/{name}/status patch",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes:\n got %q\nwant %q", got, want)
	}
}
