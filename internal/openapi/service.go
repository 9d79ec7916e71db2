package openapi

import (
	"fmt"
	"maps"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-base/version"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/cached"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// Resource is what the builder needs to know about one served resource.
type Resource struct {
	Group, Version, Kind, Plural string
	Namespaced                   bool
	// Verbs the resource supports: create delete deletecollection get list
	// patch update watch. The status and scale subresources get the get,
	// update and patch operations their parent has.
	Verbs []string
	// Status and Scale say whether those subresources exist.
	Status, Scale bool
}

// Service serves /openapi/v2 and /openapi/v3[/...] for a fixed set of
// resources. The documents are built on the first request for them, once;
// a Service is safe for concurrent use.
type Service struct {
	resources []Resource
	gvs       []schema.GroupVersion // in order of first appearance

	names cached.Value[*names]
	v2    cached.Value[*spec.Swagger]
	v3    cached.Value[map[schema.GroupVersion]*spec3.OpenAPI]
}

// New returns a Service for resources. It does no I/O and starts no
// goroutines; nothing is built until a document is requested.
func New(resources []Resource) *Service {
	s := &Service{resources: resources}
	seen := map[schema.GroupVersion]bool{}
	for _, r := range resources {
		gv := schema.GroupVersion{Group: r.Group, Version: r.Version}
		if !seen[gv] {
			seen[gv] = true
			s.gvs = append(s.gvs, gv)
		}
	}
	s.names = cached.Once(cached.Func(func() (*names, string, error) {
		n, err := newNames()
		return n, "", err
	}))
	s.v2 = cached.Once(cached.Func(s.buildV2))
	s.v3 = cached.Once(cached.Func(s.buildV3))
	return s
}

// Install registers GET /openapi/v2, /openapi/v3 and /openapi/v3/{group
// version path} on mux.
//
// /openapi/v2 answers in JSON or, for Accept:
// application/com.github.proto-openapi.spec.v2@v1.0+protobuf (what
// client-go's discovery asks for), in protobuf. /openapi/v3 is the index of
// per-group-version documents, each linked with a hash of its content; the
// documents are served as JSON or protobuf, cacheable forever when fetched
// with the current hash.
func (s *Service) Install(mux *http.ServeMux) {
	v2 := handler.NewOpenAPIServiceLazy(s.v2)
	v2.RegisterOpenAPIVersionedService("/openapi/v2", getOnly{mux})

	v3 := handler3.NewOpenAPIService()
	known := map[string]bool{}
	for _, gv := range s.gvs {
		key := v3Key(gv)
		known[key] = true
		v3.UpdateGroupVersionLazy(key, cached.Transform(
			func(docs map[schema.GroupVersion]*spec3.OpenAPI, etag string, err error) (*spec3.OpenAPI, string, error) {
				return docs[gv], etag, err
			}, s.v3))
	}
	mux.Handle("GET /openapi/v3", http.HandlerFunc(v3.HandleDiscovery))
	mux.Handle("GET /openapi/v3/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// handler3 answers an unknown group version with an empty 200.
		if !known[strings.TrimPrefix(r.URL.Path, "/openapi/v3/")] {
			http.NotFound(w, r)
			return
		}
		v3.HandleGroupVersion(w, r)
	}))
}

// getOnly registers kube-openapi's handlers for GET (and HEAD) only.
type getOnly struct{ mux *http.ServeMux }

func (g getOnly) Handle(path string, h http.Handler) { g.mux.Handle("GET "+path, h) }

// v3Key is the index key and URL path of a group version's v3 document:
// "api/v1", "apis/apps/v1".
func v3Key(gv schema.GroupVersion) string {
	return strings.TrimPrefix(rootPath(gv), "/")
}

// Every operation may answer 401, and authenticates with a bearer token, as
// upstream documents.
const bearerToken = "BearerToken"

var security = []map[string][]string{{bearerToken: {}}}

func info() *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: version.Get().GitVersion}}
}

// routes lays out the routes of every served resource, by group version.
func (s *Service) routes(n *names) ([]common.RouteContainer, error) {
	byGV := map[schema.GroupVersion][]Resource{}
	for _, r := range s.resources {
		gv := schema.GroupVersion{Group: r.Group, Version: r.Version}
		byGV[gv] = append(byGV[gv], r)
	}
	out := make([]common.RouteContainer, 0, len(s.gvs))
	for _, gv := range s.gvs {
		c, err := groupVersionRouteSet(gv, byGV[gv], n)
		if err != nil {
			return nil, fmt.Errorf("openapi for %v: %w", gv, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// buildV2 builds the OpenAPI v2 document of all served resources.
func (s *Service) buildV2() (*spec.Swagger, string, error) {
	n, _, err := s.names.Get()
	if err != nil {
		return nil, "", err
	}
	routes, err := s.routes(n)
	if err != nil {
		return nil, "", err
	}
	sw, err := builder.BuildOpenAPISpecFromRoutes(routes, &common.Config{
		Info:                           info(),
		GetDefinitions:                 definitions,
		GetDefinitionName:              n.definitionName,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		CommonResponses: map[int]spec.Response{
			http.StatusUnauthorized: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
		},
		SecurityDefinitions: &spec.SecurityDefinitions{
			bearerToken: &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
				Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
			}},
		},
		DefaultSecurity: security,
	})
	if err != nil {
		return nil, "", fmt.Errorf("build openapi v2: %w", err)
	}
	// As upstream: v2 clients do not expect defaults in definitions.
	sw.Definitions = handler.PruneDefaults(sw.Definitions)
	return sw, "", nil
}

// definitions are the generated schemas of the k8s.io/api types plus the
// hand-written ones of the types Skiff defines itself.
func definitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := GetOpenAPIDefinitions(ref)
	maps.Copy(defs, settingsv1alpha1.GetOpenAPIDefinitions(ref))
	return defs
}

// buildV3 builds one OpenAPI v3 document per served group version.
func (s *Service) buildV3() (map[schema.GroupVersion]*spec3.OpenAPI, string, error) {
	n, _, err := s.names.Get()
	if err != nil {
		return nil, "", err
	}
	routes, err := s.routes(n)
	if err != nil {
		return nil, "", err
	}
	// The definitions are shared by the group versions' builds, which run
	// one after another here.
	defs := definitions(func(name string) spec.Ref {
		defName, _ := n.definitionName(name)
		return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(defName))
	})
	docs := make(map[schema.GroupVersion]*spec3.OpenAPI, len(s.gvs))
	for i, gv := range s.gvs {
		doc, err := builder3.BuildOpenAPISpecFromRoutes(routes[i:i+1], &common.OpenAPIV3Config{
			Info:                           info(),
			Definitions:                    defs,
			GetDefinitionName:              n.definitionName,
			GetOperationIDAndTagsFromRoute: operationIDAndTags,
			CommonResponses: map[int]*spec3.Response{
				http.StatusUnauthorized: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
			},
			SecuritySchemes: spec3.SecuritySchemes{
				bearerToken: &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
					Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
				}},
			},
			PostProcessSpec: func(doc *spec3.OpenAPI) (*spec3.OpenAPI, error) {
				doc.SecurityRequirement = security // builder3 ignores DefaultSecurity
				return doc, nil
			},
		})
		if err != nil {
			return nil, "", fmt.Errorf("build openapi v3 for %v: %w", gv, err)
		}
		docs[gv] = doc
	}
	return docs, "", nil
}
