package apiserver

import (
	"net/http"
	"net/url"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/resources"
)

// Nothing a client sends may panic the server: these feed arbitrary input
// to the parsers every request goes through.

func FuzzRequestInfo(f *testing.F) {
	for _, s := range []string{"/api/v1/namespaces/a/pods/b/status", "/apis/apps/v1/watch/deployments", "/api", "//", "/apis/x/y/namespaces/"} {
		f.Add("GET", s, "watch=1")
	}
	f.Fuzz(func(t *testing.T, method, path, query string) {
		r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}}
		parseRequestInfo(r)
		parseListOptions(r)
	})
}

func FuzzDecodeAndPatch(f *testing.F) {
	kinds := map[string]*kind{}
	for _, r := range resources.All {
		k, err := newKind(r, map[schema.GroupVersionKind]converter{})
		if err == nil {
			kinds[r.Kind] = k
		}
	}
	f.Add("Deployment", []byte(`{"spec":{"replicas":"x"}}`), []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}}}`))
	f.Add("Pod", []byte(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}`), []byte(`[{"op":"remove","path":"/spec"}]`))
	f.Add("Service", []byte(`{}`), []byte(`{"spec":{"ports":[{"$retainKeys":["port"]}]}}`))
	f.Fuzz(func(t *testing.T, kindName string, body, patch []byte) {
		k, ok := kinds[kindName]
		if !ok {
			k = kinds["ConfigMap"]
		}
		obj := k.newServed()
		for _, mode := range []fieldValidation{validationStrict, validationWarn} {
			decodeInto(body, obj, k, mode)
		}
		checkTypeMeta(obj, k)
		protoSerializer.Decode(body, nil, k.newServed())
		decodeContinue(string(body), k.prefix)
		doc := []byte(`{"metadata":{"name":"n"},"spec":{}}`)
		for _, p := range patchers {
			p(doc, patch, k.newServed())
		}
	})
}
