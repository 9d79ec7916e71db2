package openapi

import (
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
)

// Media types of request and response bodies. Skiff's API server speaks JSON
// and YAML (no protobuf, unlike upstream); watches stream JSON.
var (
	mediaTypes       = []string{"application/json", "application/yaml"}
	streamMediaTypes = []string{"application/json", "application/yaml", "application/json;stream=watch"}
	anyMediaType     = []string{"*/*"}
	// patchMediaTypes must include strategic-merge-patch+json: kubectl apply
	// computes a strategic-merge patch from the v3 schemas only when the
	// kind's PATCH operation accepts it.
	patchMediaTypes = []string{
		"application/json-patch+json",
		"application/merge-patch+json",
		"application/strategic-merge-patch+json",
		"application/apply-patch+yaml",
	}
)

// Models of bodies that are the same for every resource.
var (
	statusModel        = model(metav1.Status{}.OpenAPIModelName())
	deleteOptionsModel = model(metav1.DeleteOptions{}.OpenAPIModelName())
	patchModel         = model(metav1.Patch{}.OpenAPIModelName())
	watchEventModel    = model(metav1.WatchEvent{}.OpenAPIModelName())
	resourceListModel  = model(metav1.APIResourceList{}.OpenAPIModelName())
	scaleGVK           = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
)

// route is one operation; it implements common.Route.
type route struct {
	method, path   string
	operation, doc string
	params         []param
	consumes       []string
	produces       []string
	metadata       map[string]any
	body           any // request body sample (a model), nil if none
	responses      []common.StatusCodeResponse
}

func (r *route) Method() string             { return r.method }
func (r *route) Path() string               { return r.path }
func (r *route) OperationName() string      { return r.operation }
func (r *route) Description() string        { return r.doc }
func (r *route) Consumes() []string         { return r.consumes }
func (r *route) Produces() []string         { return r.produces }
func (r *route) Metadata() map[string]any   { return r.metadata }
func (r *route) RequestPayloadSample() any  { return r.body }
func (r *route) ResponsePayloadSample() any { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse {
	return r.responses
}
func (r *route) Parameters() []common.Parameter {
	out := make([]common.Parameter, len(r.params))
	for i, p := range r.params {
		out[i] = p
	}
	return out
}

// response implements common.StatusCodeResponse.
type response struct {
	code    int
	message string
	model   model
}

func (r response) Code() int       { return r.code }
func (r response) Message() string { return r.message }
func (r response) Model() any      { return r.model }

func responses(m model, codes ...int) []common.StatusCodeResponse {
	out := make([]common.StatusCodeResponse, len(codes))
	for i, c := range codes {
		out[i] = response{code: c, message: http.StatusText(c), model: m}
	}
	return out
}

// groupVersionRoutes are the routes of one group version, all under root
// (/api/v1, /apis/apps/v1); it implements common.RouteContainer.
type groupVersionRoutes struct {
	root   string
	routes []common.Route
}

func (g *groupVersionRoutes) RootPath() string                   { return g.root }
func (g *groupVersionRoutes) PathParameters() []common.Parameter { return nil }
func (g *groupVersionRoutes) Routes() []common.Route             { return g.routes }

// rootPath is where a group version is served.
func rootPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// groupVersionRouteSet lays out the routes of every resource of one group
// version, plus the group version's resource list.
func groupVersionRouteSet(gv schema.GroupVersion, resources []Resource, n *names) (*groupVersionRoutes, error) {
	g := &groupVersionRoutes{root: rootPath(gv)}
	g.routes = append(g.routes, &route{
		method:    http.MethodGet,
		path:      g.root + "/",
		operation: "getAPIResources",
		doc:       "get available resources",
		consumes:  mediaTypes,
		produces:  mediaTypes,
		responses: responses(resourceListModel, http.StatusOK),
	})
	for _, r := range resources {
		rs, err := resourceRoutes(r, n)
		if err != nil {
			return nil, err
		}
		for _, rt := range rs {
			g.routes = append(g.routes, rt)
		}
	}
	return g, nil
}

// resourceRoutes lays out the operations of one resource the way the
// upstream API server's installer does: operation names, documentation,
// query parameters, bodies and the x-kubernetes-action and
// x-kubernetes-group-version-kind extensions.
func resourceRoutes(r Resource, n *names) ([]*route, error) {
	gvk := schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
	obj, err := n.model(gvk)
	if err != nil {
		return nil, err
	}
	list, err := n.model(gvk.GroupVersion().WithKind(r.Kind + "List"))
	if err != nil {
		return nil, err
	}
	has := func(verb string) bool { return slices.Contains(r.Verbs, verb) }

	root := rootPath(gvk.GroupVersion())
	scope, scopePath := "", ""
	var scopeParams []param
	if r.Namespaced {
		scope, scopePath = "Namespaced", "/namespaces/{namespace}"
		scopeParams = []param{namespaceParam}
	}
	collection := root + scopePath + "/" + r.Plural
	item := collection + "/{name}"
	watchCollection := root + "/watch" + scopePath + "/" + r.Plural
	itemParams := append(slices.Clone(scopeParams), nameParam(r.Kind))
	kind := r.Kind

	b := routeBuilder{gvk: gvk}
	if has("list") {
		doc := "list objects of kind " + kind
		if has("watch") {
			doc = "list or watch objects of kind " + kind
		}
		b.add(&route{
			method: http.MethodGet, path: collection, operation: "list" + scope + kind, doc: doc,
			params: concat(scopeParams, optionParams(metav1.ListOptions{})), produces: streamMediaTypes,
			responses: responses(list, http.StatusOK),
		}, "list")
		if r.Namespaced {
			b.add(&route{
				method: http.MethodGet, path: root + "/" + r.Plural, operation: "list" + kind + "ForAllNamespaces", doc: doc,
				params: optionParams(metav1.ListOptions{}), produces: streamMediaTypes,
				responses: responses(list, http.StatusOK),
			}, "list")
		}
	}
	if has("watch") {
		const deprecatedList = ". deprecated: use the 'watch' parameter with a list operation instead."
		b.add(&route{
			method: http.MethodGet, path: watchCollection, operation: "watch" + scope + kind + "List",
			doc:    "watch individual changes to a list of " + kind + deprecatedList,
			params: concat(scopeParams, optionParams(metav1.ListOptions{})), produces: streamMediaTypes,
			responses: responses(watchEventModel, http.StatusOK),
		}, "watchlist")
		if r.Namespaced {
			b.add(&route{
				method: http.MethodGet, path: root + "/watch/" + r.Plural, operation: "watch" + kind + "ListForAllNamespaces",
				doc:    "watch individual changes to a list of " + kind + deprecatedList,
				params: optionParams(metav1.ListOptions{}), produces: streamMediaTypes,
				responses: responses(watchEventModel, http.StatusOK),
			}, "watchlist")
		}
		b.add(&route{
			method: http.MethodGet, path: watchCollection + "/{name}", operation: "watch" + scope + kind,
			doc:    "watch changes to an object of kind " + kind + ". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
			params: concat(itemParams, optionParams(metav1.ListOptions{})), produces: streamMediaTypes,
			responses: responses(watchEventModel, http.StatusOK),
		}, "watch")
	}
	if has("create") {
		b.add(&route{
			method: http.MethodPost, path: collection, operation: "create" + scope + kind,
			doc:    "create" + article(kind) + kind,
			params: concat(scopeParams, optionParams(metav1.CreateOptions{}), []param{bodyParam(true)}),
			body:   obj, responses: responses(obj, http.StatusOK, http.StatusCreated, http.StatusAccepted),
		}, "post")
	}
	if has("deletecollection") {
		b.add(&route{
			method: http.MethodDelete, path: collection, operation: "deletecollection" + scope + kind,
			doc: "delete collection of " + kind,
			params: concat(scopeParams, optionParams(metav1.DeleteOptions{}),
				optionParams(metav1.ListOptions{}, "watch", "allowWatchBookmarks", "sendInitialEvents"),
				[]param{bodyParam(false)}),
			body: deleteOptionsModel, responses: responses(statusModel, http.StatusOK),
		}, "deletecollection")
	}
	if has("get") {
		b.add(&route{
			method: http.MethodGet, path: item, operation: "read" + scope + kind, doc: "read the specified " + kind,
			params: itemParams, responses: responses(obj, http.StatusOK),
		}, "get")
	}
	if has("update") {
		b.add(&route{
			method: http.MethodPut, path: item, operation: "replace" + scope + kind, doc: "replace the specified " + kind,
			params: concat(itemParams, optionParams(metav1.UpdateOptions{}), []param{bodyParam(true)}),
			body:   obj, responses: responses(obj, http.StatusOK, http.StatusCreated),
		}, "put")
	}
	if has("patch") {
		b.add(&route{
			method: http.MethodPatch, path: item, operation: "patch" + scope + kind, doc: "partially update the specified " + kind,
			params:   concat(itemParams, optionParams(metav1.PatchOptions{}), []param{bodyParam(true)}),
			consumes: patchMediaTypes, body: patchModel, responses: responses(obj, http.StatusOK, http.StatusCreated),
		}, "patch")
	}
	if has("delete") {
		b.add(&route{
			method: http.MethodDelete, path: item, operation: "delete" + scope + kind, doc: "delete" + article(kind) + kind,
			params: concat(itemParams, optionParams(metav1.DeleteOptions{}), []param{bodyParam(false)}),
			body:   deleteOptionsModel, responses: responses(statusModel, http.StatusOK, http.StatusAccepted),
		}, "delete")
	}

	if r.Status {
		b.subresource(item, scope, kind, "status", itemParams, obj, has)
	}
	if r.Scale {
		scale, err := n.model(scaleGVK)
		if err != nil {
			return nil, err
		}
		scaleParams := append(slices.Clone(scopeParams), nameParam(scaleGVK.Kind))
		sb := routeBuilder{gvk: scaleGVK}
		sb.subresource(item, scope, kind, "scale", scaleParams, scale, has)
		b.routes = append(b.routes, sb.routes...)
	}
	return b.routes, nil
}

// routeBuilder collects the routes of one kind, stamping each with the
// extensions upstream puts on every operation.
type routeBuilder struct {
	gvk    schema.GroupVersionKind
	routes []*route
}

func (b *routeBuilder) add(r *route, action string) {
	r.params = append(r.params, prettyParam)
	if r.consumes == nil {
		r.consumes = anyMediaType
	}
	if r.produces == nil {
		r.produces = mediaTypes
	}
	r.metadata = map[string]any{
		extAction: action,
		extGVK:    metav1.GroupVersionKind{Group: b.gvk.Group, Version: b.gvk.Version, Kind: b.gvk.Kind},
	}
	b.routes = append(b.routes, r)
}

// subresource adds get, replace and patch of the status or scale of an
// object, as far as the parent resource allows those verbs.
func (b *routeBuilder) subresource(item, scope, kind, sub string, params []param, obj model, has func(string) bool) {
	path := item + "/" + sub
	suffix := strings.ToUpper(sub[:1]) + sub[1:]
	if has("get") {
		b.add(&route{
			method: http.MethodGet, path: path, operation: "read" + scope + kind + suffix,
			doc:    "read " + sub + " of the specified " + kind,
			params: params, responses: responses(obj, http.StatusOK),
		}, "get")
	}
	if has("update") {
		b.add(&route{
			method: http.MethodPut, path: path, operation: "replace" + scope + kind + suffix,
			doc:    "replace " + sub + " of the specified " + kind,
			params: concat(params, optionParams(metav1.UpdateOptions{}), []param{bodyParam(true)}),
			body:   obj, responses: responses(obj, http.StatusOK, http.StatusCreated),
		}, "put")
	}
	if has("patch") {
		b.add(&route{
			method: http.MethodPatch, path: path, operation: "patch" + scope + kind + suffix,
			doc:      "partially update " + sub + " of the specified " + kind,
			params:   concat(params, optionParams(metav1.PatchOptions{}), []param{bodyParam(true)}),
			consumes: patchMediaTypes, body: patchModel, responses: responses(obj, http.StatusOK, http.StatusCreated),
		}, "patch")
	}
}

// article is upstream's GetArticleForNoun with padding: " a ", " an ", or
// " " before plural-looking nouns such as Endpoints.
func article(noun string) string {
	if !strings.HasSuffix(noun, "ss") && strings.HasSuffix(noun, "s") {
		return " "
	}
	switch noun[0] {
	case 'A', 'E', 'I', 'O', 'U':
		return " an "
	}
	return " a "
}

func concat(lists ...[]param) []param {
	var out []param
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
