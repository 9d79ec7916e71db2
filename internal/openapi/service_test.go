package openapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	cachedopenapi "k8s.io/client-go/openapi/cached"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	"skiff.dev/skiff/internal/resources"
)

var deploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// served converts Skiff's resource table the way the API server does.
func served() []Resource {
	out := make([]Resource, 0, len(resources.All))
	for _, r := range resources.All {
		if r.NoOpenAPI {
			continue
		}
		out = append(out, Resource{
			Group: r.Group, Version: r.Version, Kind: r.Kind, Plural: r.Plural,
			Namespaced: r.Namespaced, Verbs: r.AllVerbs(), Status: r.Status, Scale: r.Scale,
		})
	}
	return out
}

// startServer serves the documents of rs on a test server and returns a
// client config for it.
func startServer(t testing.TB, rs []Resource) (*httptest.Server, *rest.Config) {
	t.Helper()
	mux := http.NewServeMux()
	New(rs).Install(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &rest.Config{Host: srv.URL}
}

// fetch GETs url with the given Accept header.
func fetch(client *http.Client, url, accept string) (status int, body []byte, hdr http.Header, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header, err
}

// get fetches url, checks the status code and returns the body and headers.
func get(t testing.TB, client *http.Client, url, accept string, wantStatus int) ([]byte, http.Header) {
	t.Helper()
	status, body, hdr, err := fetch(client, url, accept)
	if err != nil {
		t.Fatal(err)
	}
	if status != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %.200s", url, status, wantStatus, body)
	}
	return body, hdr
}

func TestV2JSON(t *testing.T) {
	srv, _ := startServer(t, served())
	body, hdr := get(t, srv.Client(), srv.URL+"/openapi/v2", "application/json", http.StatusOK)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	etag := hdr.Get("Etag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	var sw spec.Swagger
	if err := json.Unmarshal(body, &sw); err != nil {
		t.Fatal(err)
	}
	def, ok := sw.Definitions["io.k8s.api.apps.v1.Deployment"]
	if !ok {
		t.Fatal("no definition io.k8s.api.apps.v1.Deployment")
	}
	var gvks []map[string]string
	if err := def.Extensions.GetObject(extGVK, &gvks); err != nil || len(gvks) != 1 ||
		gvks[0]["group"] != "apps" || gvks[0]["version"] != "v1" || gvks[0]["kind"] != "Deployment" {
		t.Errorf("Deployment %s = %v (%v)", extGVK, gvks, err)
	}
	if def.Properties["spec"].Default != nil {
		t.Error("v2 definitions keep their defaults; upstream prunes them")
	}

	patch := sw.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].Patch
	if patch == nil {
		t.Fatal("no PATCH operation for deployments")
	}
	if patch.ID != "patchAppsV1NamespacedDeployment" {
		t.Errorf("operation ID = %q", patch.ID)
	}
	var params []string
	for _, p := range patch.Parameters {
		if ref := p.Ref.String(); ref != "" { // shared parameters are hoisted
			p = sw.Parameters[strings.TrimPrefix(ref, "#/parameters/")]
		}
		params = append(params, p.In+":"+p.Name)
	}
	for _, want := range []string{"query:fieldValidation", "query:dryRun", "query:fieldManager", "query:force", "body:body"} {
		if !slices.Contains(params, want) {
			t.Errorf("PATCH parameters %v lack %s", params, want)
		}
	}

	// The ETag makes re-fetches cheap.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi/v2", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: status %d, want 304", resp.StatusCode)
	}
}

// TestV2Protobuf follows client-go's discovery.OpenAPISchema (protobuf) and
// what kubectl does with the result: validation support checks and
// strategic-merge patch metadata.
func TestV2Protobuf(t *testing.T) {
	srv, cfg := startServer(t, served())

	body, hdr := get(t, srv.Client(), srv.URL+"/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf", http.StatusOK)
	if ct := hdr.Get("Content-Type"); ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw openapi_v2.Document
	if err := proto.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode protobuf: %v", err)
	}

	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	models, err := kubectlopenapi.NewOpenAPIData(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range served() {
		gvk := schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		if models.LookupResource(gvk) == nil {
			t.Errorf("v2: no schema for %v", gvk)
		}
	}
	if c := models.GetConsumes(deploymentGVK, "PATCH"); !slices.Contains(c, "application/strategic-merge-patch+json") {
		t.Errorf("v2 PATCH consumes %v", c)
	}

	v := resource.NewQueryParamVerifier(dynamic.NewForConfigOrDie(cfg), dc, resource.QueryParamFieldValidation)
	if err := v.HasSupport(deploymentGVK); err != nil {
		t.Errorf("v2 fieldValidation support: %v", err)
	}

	meta := strategicpatch.PatchMetaFromOpenAPI{Schema: models.LookupResource(deploymentGVK)}
	checkContainersMergeByName(t, meta)
}

// checkContainersMergeByName walks spec.template.spec.containers the way
// strategic merge patch does and checks the list merges by name.
func checkContainersMergeByName(t *testing.T, meta strategicpatch.LookupPatchMeta) {
	t.Helper()
	var err error
	for _, field := range []string{"spec", "template", "spec"} {
		if meta, _, err = meta.LookupPatchMetadataForStruct(field); err != nil {
			t.Fatalf("lookup %s: %v", field, err)
		}
	}
	_, pm, err := meta.LookupPatchMetadataForSlice("containers")
	if err != nil {
		t.Fatal(err)
	}
	if s := pm.GetPatchStrategies(); !slices.Equal(s, []string{"merge"}) || pm.GetPatchMergeKey() != "name" {
		t.Errorf("containers: patch strategies %v, merge key %q; want [merge], name", s, pm.GetPatchMergeKey())
	}
}

func TestV3IndexAndDocuments(t *testing.T) {
	srv, _ := startServer(t, served())
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	body, _ := get(t, noRedirects, srv.URL+"/openapi/v3", "application/json", http.StatusOK)
	var index handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v1", "apis/autoscaling/v2",
		"apis/networking.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/coordination.k8s.io/v1", "apis/policy/v1"} {
		entry, ok := index.Paths[key]
		if !ok {
			t.Errorf("index lacks %s", key)
			continue
		}
		if !strings.HasPrefix(entry.ServerRelativeURL, "/openapi/v3/"+key+"?hash=") {
			t.Errorf("%s: serverRelativeURL %q", key, entry.ServerRelativeURL)
		}
	}

	apps := index.Paths["apis/apps/v1"].ServerRelativeURL
	body, hdr := get(t, noRedirects, srv.URL+apps, "application/json", http.StatusOK)
	if cc := hdr.Get("Cache-Control"); cc != "public, immutable" {
		t.Errorf("Cache-Control = %q", cc)
	}
	var doc spec3.OpenAPI
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]; !ok {
		t.Error("apps/v1 document lacks the deployments scale subresource")
	}
	for p := range doc.Paths.Paths {
		if !strings.HasPrefix(p, "/apis/apps/v1/") {
			t.Errorf("apps/v1 document has foreign path %s", p)
		}
	}

	pb, hdr := get(t, noRedirects, srv.URL+apps, "application/com.github.proto-openapi.spec.v3@v1.0+protobuf", http.StatusOK)
	if ct := hdr.Get("Content-Type"); ct != "application/com.github.proto-openapi.spec.v3.v1.0+protobuf" {
		t.Errorf("Content-Type = %q", ct)
	}
	if err := proto.Unmarshal(pb, &openapi_v3.Document{}); err != nil {
		t.Errorf("decode v3 protobuf: %v", err)
	}

	// A stale hash redirects to the current one; no hash serves uncached.
	_, hdr = get(t, noRedirects, srv.URL+"/openapi/v3/apis/apps/v1?hash=stale", "application/json", http.StatusMovedPermanently)
	if loc := hdr.Get("Location"); loc != apps {
		t.Errorf("redirect to %q, want %q", loc, apps)
	}
	get(t, noRedirects, srv.URL+"/openapi/v3/apis/apps/v1", "application/json", http.StatusOK)
	get(t, noRedirects, srv.URL+"/openapi/v3/apis/nosuch.example.com/v1", "application/json", http.StatusNotFound)
	get(t, noRedirects, srv.URL+"/openapi/v3/", "application/json", http.StatusNotFound)
}

// TestKubectlV3 runs kubectl's own OpenAPI v3 code paths against the
// server: the fieldValidation check of apply, schema lookup by GVK,
// strategic-merge patch computation, and explain.
func TestKubectlV3(t *testing.T) {
	_, cfg := startServer(t, served())
	client := cachedopenapi.NewClient(discovery.NewDiscoveryClientForConfigOrDie(cfg).OpenAPIV3())
	root := openapi3.NewRoot(client)

	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gvs, deploymentGVK.GroupVersion()) {
		t.Errorf("group versions %v lack apps/v1", gvs)
	}

	verifier := resource.NewQueryParamVerifierV3(dynamic.NewForConfigOrDie(cfg), client, resource.QueryParamFieldValidation)
	for _, r := range served() {
		gvk := schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		if err := verifier.HasSupport(gvk); err != nil {
			t.Errorf("fieldValidation support for %v: %v", gvk, err)
		}
	}
	unserved := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ControllerRevision"}
	if err := verifier.HasSupport(unserved); err == nil {
		t.Errorf("fieldValidation support claimed for unserved %v", unserved)
	}

	doc, err := root.GVSpec(deploymentGVK.GroupVersion())
	if err != nil {
		t.Fatal(err)
	}
	deployment := schemaForGVK(doc, deploymentGVK)
	if deployment == nil {
		t.Fatalf("no schema with %s %v", extGVK, deploymentGVK)
	}
	meta := strategicpatch.PatchMetaFromOpenAPIV3{Schema: deployment, SchemaList: doc.Components.Schemas}
	checkContainersMergeByName(t, meta)

	// What kubectl apply sends when an image changes: containers are
	// patched by name, keeping their order.
	original := deploymentJSON(t, "app:1")
	modified := deploymentJSON(t, "app:2")
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, original, meta, false)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"sidecar"}],"containers":[{"image":"app:2","name":"app"}]}}}}`
	if string(patch) != want {
		t.Errorf("apply patch\n got %s\nwant %s", patch, want)
	}

	var out bytes.Buffer
	gvr := deploymentGVK.GroupVersion().WithResource("deployments")
	if err := explainv2.PrintModelDescription([]string{"spec", "strategy"}, &out, client, gvr, false, 0, "plaintext"); err != nil {
		t.Fatalf("explain deployment.spec.strategy: %v", err)
	}
	for _, want := range []string{"KIND:       Deployment", "FIELD: strategy <DeploymentStrategy>", "rollingUpdate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
}

// schemaForGVK finds a kind's schema as kubectl's patcher does.
func schemaForGVK(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) *spec.Schema {
	for _, s := range doc.Components.Schemas {
		var gvks []map[string]string
		if s.Extensions.GetObject(extGVK, &gvks) != nil {
			continue
		}
		for _, g := range gvks {
			if g["group"] == gvk.Group && g["version"] == gvk.Version && g["kind"] == gvk.Kind {
				return s
			}
		}
	}
	return nil
}

func deploymentJSON(t *testing.T, image string) []byte {
	t.Helper()
	return []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[` +
		`{"name":"app","image":"` + image + `"},{"name":"sidecar","image":"proxy:1"}]}}}}`)
}

// TestFutureGroups checks the groups generated for later (rbac, storage,
// scheduling) and cluster-scoped kinds build and serve.
func TestFutureGroups(t *testing.T) {
	crud := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	rs := []Resource{
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole", Plural: "clusterroles", Verbs: crud},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding", Plural: "rolebindings", Namespaced: true, Verbs: crud},
		{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass", Plural: "storageclasses", Verbs: crud},
		{Group: "scheduling.k8s.io", Version: "v1", Kind: "PriorityClass", Plural: "priorityclasses", Verbs: crud},
		{Version: "v1", Kind: "PersistentVolume", Plural: "persistentvolumes", Verbs: crud, Status: true},
	}
	_, cfg := startServer(t, rs)
	client := cachedopenapi.NewClient(discovery.NewDiscoveryClientForConfigOrDie(cfg).OpenAPIV3())
	verifier := resource.NewQueryParamVerifierV3(dynamic.NewForConfigOrDie(cfg), client, resource.QueryParamFieldValidation)
	for _, r := range rs {
		gvk := schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		if err := verifier.HasSupport(gvk); err != nil {
			t.Errorf("%v: %v", gvk, err)
		}
	}
	doc, err := openapi3.NewRoot(client).GVSpec(schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Paths.Paths["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"].Get
	if op == nil || op.OperationId != "readRbacAuthorizationV1ClusterRole" {
		t.Errorf("cluster-scoped read operation = %+v", op)
	}
}

func TestUnknownKindFails(t *testing.T) {
	srv, _ := startServer(t, []Resource{{Group: "example.com", Version: "v1", Kind: "Widget", Plural: "widgets", Verbs: []string{"get"}}})
	get(t, srv.Client(), srv.URL+"/openapi/v2", "application/json", http.StatusServiceUnavailable)
}

// TestConcurrentFirstRequests races the first requests, which build the
// documents; run with -race.
func TestConcurrentFirstRequests(t *testing.T) {
	rs := served()
	srv, _ := startServer(t, rs)
	const pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	type request struct{ path, accept string }
	reqs := []request{{"/openapi/v2", "application/json"}, {"/openapi/v2", pb}, {"/openapi/v3", "application/json"}}
	for _, gv := range New(rs).gvs {
		reqs = append(reqs, request{"/openapi/v3/" + v3Key(gv), "application/json"})
	}
	var mu sync.Mutex
	bodies := map[request][]byte{}
	var wg sync.WaitGroup
	for i := range 4 * len(reqs) {
		r := reqs[i%len(reqs)]
		wg.Go(func() {
			status, body, _, err := fetch(srv.Client(), srv.URL+r.path, r.accept)
			if err != nil || status != http.StatusOK {
				t.Errorf("GET %s (%s): %d %v", r.path, r.accept, status, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := bodies[r]; ok && !bytes.Equal(prev, body) {
				t.Errorf("GET %s (%s): bodies differ between requests", r.path, r.accept)
			}
			bodies[r] = body
		})
	}
	wg.Wait()
}
