package apiserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/resources"
)

var metricsGV = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}

var metricsResources = []metav1.APIResource{
	{Name: "nodes", Kind: "NodeMetrics", Verbs: metav1.Verbs{"get", "list"}},
	{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: metav1.Verbs{"get", "list"}},
}

// pathRecorder is an extra group's handler that remembers what it got.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.paths = append(p.paths, r.URL.RequestURI())
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[]}`)
}

// extraServer is an API server (no store: only discovery and the extra
// group are asked) serving core/v1 and apps/v1 from the table and
// metrics.k8s.io from h, for callers with token "t".
func extraServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	var rs []resources.Resource
	for _, r := range resources.All {
		if (r.Group == "" || r.Group == "apps") && r.Version == "v1" && (r.Kind == "Pod" || r.Kind == "Deployment") {
			rs = append(rs, r)
		}
	}
	s, err := apiserver.New(apiserver.Config{
		Resources:     rs,
		Authenticator: apiserver.TokenAuthenticator{"t": {Name: "admin", Groups: []string{"system:masters"}}},
		Extra:         []apiserver.ExtraGroup{{GroupVersion: metricsGV, Resources: metricsResources, Handler: h}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestExtraGroupDiscovery: client-go's discovery (aggregated, and the
// legacy documents) finds the extra group beside the table's.
func TestExtraGroupDiscovery(t *testing.T) {
	srv := extraServer(t, &pathRecorder{})
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL, BearerToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(groups, func(g *metav1.APIGroup) bool { return g.Name == "metrics.k8s.io" })
	if i < 0 || groups[i].PreferredVersion.GroupVersion != "metrics.k8s.io/v1beta1" {
		t.Fatalf("aggregated discovery groups: %v", groups)
	}
	var got []string
	for _, l := range lists {
		if l.GroupVersion != "metrics.k8s.io/v1beta1" {
			continue
		}
		for _, r := range l.APIResources {
			got = append(got, strings.Join([]string{r.Name, r.Kind, r.Group, r.Version, strings.Join(r.Verbs, ","), map[bool]string{true: "namespaced"}[r.Namespaced]}, " "))
		}
	}
	want := []string{"nodes NodeMetrics metrics.k8s.io v1beta1 get,list ", "pods PodMetrics metrics.k8s.io v1beta1 get,list namespaced"}
	if !slices.Equal(got, want) {
		t.Errorf("aggregated resources:\n%q\nwant\n%q", got, want)
	}

	// The legacy documents, as older clients and kubectl top's
	// ServerGroups read them.
	for _, tc := range []struct {
		path string
		want func(t *testing.T, body []byte)
	}{
		{"/apis", func(t *testing.T, body []byte) {
			var l metav1.APIGroupList
			mustDecode(t, body, &l)
			names := []string{}
			for _, g := range l.Groups {
				names = append(names, g.Name+"="+g.PreferredVersion.GroupVersion)
			}
			if !slices.Equal(names, []string{"apps=apps/v1", "metrics.k8s.io=metrics.k8s.io/v1beta1"}) || l.Kind != "APIGroupList" {
				t.Errorf("groups %v (%s)", names, l.Kind)
			}
		}},
		{"/apis/metrics.k8s.io", func(t *testing.T, body []byte) {
			var g metav1.APIGroup
			mustDecode(t, body, &g)
			if g.Kind != "APIGroup" || g.Name != "metrics.k8s.io" || len(g.Versions) != 1 || g.Versions[0].Version != "v1beta1" {
				t.Errorf("group %+v", g)
			}
		}},
		{"/apis/metrics.k8s.io/v1beta1", func(t *testing.T, body []byte) {
			var l metav1.APIResourceList
			mustDecode(t, body, &l)
			if l.Kind != "APIResourceList" || l.GroupVersion != "metrics.k8s.io/v1beta1" || len(l.APIResources) != 2 {
				t.Errorf("resource list %+v", l)
			}
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := get(t, srv.URL+tc.path, "t", "application/json")
			if code != http.StatusOK {
				t.Fatalf("%d: %s", code, body)
			}
			tc.want(t, body)
		})
	}
}

// TestExtraGroupRouting: the group's resource paths reach its handler,
// authenticated; discovery paths and other groups do not.
func TestExtraGroupRouting(t *testing.T) {
	rec := &pathRecorder{}
	srv := extraServer(t, rec)
	for _, tc := range []struct {
		name, path, token string
		code              int
		routed            bool
	}{
		{"namespaced list", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb", "t", 200, true},
		{"cluster get", "/apis/metrics.k8s.io/v1beta1/nodes/node1", "t", 200, true},
		{"unknown resource is the handler's to refuse", "/apis/metrics.k8s.io/v1beta1/services", "t", 200, true},
		{"anonymous", "/apis/metrics.k8s.io/v1beta1/nodes", "", 401, false},
		{"another version", "/apis/metrics.k8s.io/v1/nodes", "t", 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.paths = nil
			rec.mu.Unlock()
			code, body := get(t, srv.URL+tc.path, tc.token, "application/json")
			if code != tc.code {
				t.Errorf("code %d, want %d: %s", code, tc.code, body)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if routed := slices.Equal(rec.paths, []string{tc.path}); routed != tc.routed {
				t.Errorf("handler got %q, routed=%v want %v", rec.paths, routed, tc.routed)
			}
		})
	}
}

func TestExtraGroupInvalid(t *testing.T) {
	apps := resources.All[slices.IndexFunc(resources.All, func(r resources.Resource) bool { return r.Group == "apps" })]
	for _, tc := range []struct {
		name  string
		extra apiserver.ExtraGroup
	}{
		{"served from the table already", apiserver.ExtraGroup{GroupVersion: apps.GroupVersion(), Handler: &pathRecorder{}}},
		{"no handler", apiserver.ExtraGroup{GroupVersion: metricsGV}},
		{"core group", apiserver.ExtraGroup{GroupVersion: schema.GroupVersion{Version: "v1"}, Handler: &pathRecorder{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apiserver.New(apiserver.Config{Resources: []resources.Resource{apps}, Extra: []apiserver.ExtraGroup{tc.extra}})
			if err == nil {
				t.Error("no error")
			}
		})
	}
}

func get(t *testing.T, url, token, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
