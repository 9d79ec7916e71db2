package daemon

import (
	"log/slog"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/openapi"
	"skiff.dev/skiff/internal/printers"
	"skiff.dev/skiff/internal/resources"
	"skiff.dev/skiff/internal/store"
	"skiff.dev/skiff/internal/version"
)

// newAPIServer wires the API server with Skiff's resource table,
// admission, tables and OpenAPI documents.
func newAPIServer(st store.Interface, registry http.Handler, nodes apiserver.NodeConnector, adm apiserver.Admission, log *slog.Logger, edits ...func(*apiserver.Config)) (*apiserver.Server, error) {
	mux := http.NewServeMux()
	openapi.New(openapiResources(resources.All)).Install(mux)
	mux.Handle("/v2/", registry)
	cfg := apiserver.Config{
		Store:         st,
		Resources:     resources.All,
		Conversions:   conversions,
		Admission:     adm,
		PreDecode:     istioPreDecode,
		Tables:        tables,
		Authenticator: apiserver.Authenticators{apiserver.ClientCertAuthenticator{}},
		NonResource:   mux,
		Nodes:         nodes,
		Version:       version.Info(),
		Logger:        log.With("component", "apiserver"),
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	return apiserver.New(cfg)
}

// openapiResources are the resources the OpenAPI documents describe:
// all but those without OpenAPI definitions (Istio's kinds).
func openapiResources(rs []resources.Resource) []openapi.Resource {
	out := make([]openapi.Resource, 0, len(rs))
	for _, r := range rs {
		if r.NoOpenAPI {
			continue
		}
		out = append(out, openapi.Resource{Group: r.Group, Version: r.Version, Kind: r.Kind, Plural: r.Plural,
			Namespaced: r.Namespaced, Verbs: r.AllVerbs(), Status: r.Status, Scale: r.Scale})
	}
	return out
}

// tables adapts the printers to the API server.
func tables(gk schema.GroupKind) ([]metav1.TableColumnDefinition, func(runtime.Object, time.Time) ([]any, error)) {
	p := printers.For(gk)
	return p.Columns, p.Cells
}
