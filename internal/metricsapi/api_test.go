package metricsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// fakeNodes answers scrapes with each node's current text; a node
// without text fails.
type fakeNodes struct {
	mu    sync.Mutex
	text  map[string]string
	asked []string
}

func (f *fakeNodes) Get(_ context.Context, node, path string) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, node+path)
	text, ok := f.text[node]
	if !ok || path != ResourceMetricsPath {
		return nil, fmt.Errorf("node %s: connection refused", node)
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Body: io.NopCloser(strings.NewReader(text))}, nil
}

func (f *fakeNodes) set(node, text string) {
	f.mu.Lock()
	f.text[node] = text
	f.mu.Unlock()
}

// nodeText renders a node's resource metrics at second sec: every
// container uses cpu cores and mem bytes.
func nodeText(sec int64, containers map[[3]string][2]float64) string {
	ms := sec * 1000
	var b strings.Builder
	fmt.Fprintf(&b, "node_cpu_usage_seconds_total %v %d\nnode_memory_working_set_bytes 1073741824 %d\n", 1000+2*float64(sec), ms, ms)
	for k, v := range containers {
		labels := fmt.Sprintf(`{container=%q,namespace=%q,pod=%q}`, k[2], k[0], k[1])
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total%s %v %d\n", labels, v[0]*float64(sec), ms)
		fmt.Fprintf(&b, "container_memory_working_set_bytes%s %v %d\n", labels, v[1], ms)
		fmt.Fprintf(&b, "container_start_time_seconds%s 1\n", labels)
	}
	return b.String()
}

func readyNode(name string, ready corev1.ConditionStatus, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

var testNow = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// metricsServer has scraped twice, 10 s apart: node1 runs default/web
// (app 0.5 cores, sidecar 0.01), default/db and kube-system/dns; node2
// fails; node3 is not Ready.
func metricsServer(t *testing.T) (*Server, *fakeNodes) {
	t.Helper()
	cs := fake.NewClientset(
		readyNode("node1", corev1.ConditionTrue, map[string]string{"role": "a"}),
		readyNode("node2", corev1.ConditionTrue, map[string]string{"role": "b"}),
		readyNode("node3", corev1.ConditionFalse, nil),
		pod("default", "web", map[string]string{"app": "web"}),
		pod("default", "db", map[string]string{"app": "db"}),
		pod("default", "idle", map[string]string{"app": "idle"}),
		pod("kube-system", "dns", map[string]string{"app": "dns"}),
	)
	factory := informers.NewSharedInformerFactory(cs, 0)
	nodes := &fakeNodes{text: map[string]string{}}
	s := New(factory, nodes, slog.New(slog.NewTextHandler(t.Output(), nil)), Options{Resolution: 10 * time.Second, Now: func() time.Time { return testNow }})
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		t.Fatal("caches")
	}
	usage := map[[3]string][2]float64{
		{"default", "web", "app"}:     {0.5, 64 << 20},
		{"default", "web", "sidecar"}: {0.01, 8 << 20},
		{"default", "db", "postgres"}: {1.5, 512 << 20},
		{"kube-system", "dns", "dns"}: {0.002, 16 << 20},
	}
	for _, sec := range []int64{1_782_907_200, 1_782_907_210} {
		nodes.set("node1", nodeText(sec, usage))
		s.scrape(ctx)
	}
	return s, nodes
}

func TestScrapeOnlyReadyNodes(t *testing.T) {
	_, nodes := metricsServer(t)
	slices.Sort(nodes.asked)
	if want := []string{"node1/metrics/resource", "node1/metrics/resource", "node2/metrics/resource", "node2/metrics/resource"}; !slices.Equal(nodes.asked, want) {
		t.Errorf("scraped %q, want %q", nodes.asked, want)
	}
}

func TestAPI(t *testing.T) {
	s, _ := metricsServer(t)
	h := s.Handler()
	const base = "/apis/metrics.k8s.io/v1beta1"
	podNames := func(t *testing.T, body []byte) []string {
		var l metricsv1beta1.PodMetricsList
		decodeJSON(t, body, &l)
		if l.Kind != "PodMetricsList" || l.APIVersion != "metrics.k8s.io/v1beta1" {
			t.Errorf("list type %s %s", l.APIVersion, l.Kind)
		}
		out := []string{}
		for _, p := range l.Items {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return out
	}
	nodeNames := func(t *testing.T, body []byte) []string {
		var l metricsv1beta1.NodeMetricsList
		decodeJSON(t, body, &l)
		out := []string{}
		for _, n := range l.Items {
			out = append(out, n.Name)
		}
		return out
	}
	status := func(code int, reason metav1.StatusReason, message string) func(t *testing.T, body []byte) {
		return func(t *testing.T, body []byte) {
			var st metav1.Status
			decodeJSON(t, body, &st)
			if st.Kind != "Status" || int(st.Code) != code || st.Reason != reason || (message != "" && st.Message != message) {
				t.Errorf("status %+v, want %d %s %q", st, code, reason, message)
			}
		}
	}
	names := func(list func(*testing.T, []byte) []string, want ...string) func(t *testing.T, body []byte) {
		return func(t *testing.T, body []byte) {
			if got := list(t, body); !slices.Equal(got, want) {
				t.Errorf("items %q, want %q", got, want)
			}
		}
	}
	for _, tc := range []struct {
		name, method, path, accept string
		code                       int
		check                      func(t *testing.T, body []byte)
	}{
		{"pods in a namespace", "GET", base + "/namespaces/default/pods", "", 200, names(podNames, "default/db", "default/web")},
		{"pods in all namespaces", "GET", base + "/pods", "application/json", 200, names(podNames, "default/db", "default/web", "kube-system/dns")},
		{"label selector", "GET", base + "/namespaces/default/pods?labelSelector=app%20in%20(web,idle)", "", 200, names(podNames, "default/web")},
		{"field selector on the name", "GET", base + "/namespaces/default/pods?fieldSelector=metadata.name%3Ddb", "", 200, names(podNames, "default/db")},
		{"field selector on the namespace", "GET", base + "/pods?fieldSelector=metadata.namespace!%3Ddefault", "", 200, names(podNames, "kube-system/dns")},
		{"empty namespace", "GET", base + "/namespaces/nobody/pods", "", 200, names(podNames)},
		{"get a pod", "GET", base + "/namespaces/default/pods/web", "", 200, func(t *testing.T, body []byte) {
			var m metricsv1beta1.PodMetrics
			decodeJSON(t, body, &m)
			if m.Kind != "PodMetrics" || m.APIVersion != "metrics.k8s.io/v1beta1" || m.Name != "web" || m.Namespace != "default" ||
				m.Labels["app"] != "web" || !m.CreationTimestamp.Equal(&metav1.Time{Time: testNow}) ||
				m.Window.Duration != 10*time.Second || m.Timestamp.Unix() != 1_782_907_210 || len(m.Containers) != 2 {
				t.Fatalf("pod metrics %+v", m)
			}
			app, side := m.Containers[0], m.Containers[1]
			if app.Name != "app" || app.Usage.Cpu().String() != "500m" || app.Usage.Memory().String() != "64Mi" ||
				side.Name != "sidecar" || side.Usage.Cpu().MilliValue() != 10 {
				t.Errorf("containers %+v", m.Containers)
			}
		}},
		{"a pod without metrics", "GET", base + "/namespaces/default/pods/idle", "", 404,
			status(404, metav1.StatusReasonNotFound, `podmetrics.metrics.k8s.io "default/idle" not found`)},
		{"a pod that does not exist", "GET", base + "/namespaces/default/pods/nope", "", 404,
			status(404, metav1.StatusReasonNotFound, `pods "nope" not found`)},
		{"nodes: only the scraped one", "GET", base + "/nodes", "", 200, names(nodeNames, "node1")},
		{"nodes by label", "GET", base + "/nodes?labelSelector=role%3Db", "", 200, names(nodeNames)},
		{"nodes by name", "GET", base + "/nodes?fieldSelector=metadata.name%3Dnode1", "", 200, names(nodeNames, "node1")},
		{"get a node", "GET", base + "/nodes/node1", "", 200, func(t *testing.T, body []byte) {
			var m metricsv1beta1.NodeMetrics
			decodeJSON(t, body, &m)
			if m.Kind != "NodeMetrics" || m.Name != "node1" || m.Labels["role"] != "a" || m.Usage.Cpu().String() != "2" ||
				m.Usage.Memory().String() != "1Gi" || m.Window.Duration != 10*time.Second {
				t.Errorf("node metrics %+v", m)
			}
		}},
		{"a node whose scrape fails", "GET", base + "/nodes/node2", "", 404,
			status(404, metav1.StatusReasonNotFound, `nodemetrics.metrics.k8s.io "node2" not found`)},
		{"a node that does not exist", "GET", base + "/nodes/node9", "", 404,
			status(404, metav1.StatusReasonNotFound, `nodes "node9" not found`)},
		{"watch", "GET", base + "/pods?watch=true", "", 405, status(405, metav1.StatusReasonMethodNotAllowed, "")},
		{"create", "POST", base + "/namespaces/default/pods", "", 405, status(405, metav1.StatusReasonMethodNotAllowed, "")},
		{"bad label selector", "GET", base + "/pods?labelSelector=%3D%3D%3D", "", 400, status(400, metav1.StatusReasonBadRequest, "")},
		{"bad field selector", "GET", base + "/nodes?fieldSelector=a%3D%3D%3Db%3Dc%3D", "", 400, status(400, metav1.StatusReasonBadRequest, "")},
		{"protobuf only", "GET", base + "/pods", "application/vnd.kubernetes.protobuf", 406, status(406, metav1.StatusReasonNotAcceptable, "")},
		{"protobuf or JSON", "GET", base + "/pods", "application/vnd.kubernetes.protobuf, application/json", 200, names(podNames, "default/db", "default/web", "kube-system/dns")},
		{"unknown resource", "GET", base + "/services", "", 404, status(404, metav1.StatusReasonNotFound, "")},
		{"pods of a namespace's subresource", "GET", base + "/namespaces/default/nodes", "", 404, status(404, metav1.StatusReasonNotFound, "")},
		{"too deep", "GET", base + "/namespaces/default/pods/web/status", "", 404, status(404, metav1.StatusReasonNotFound, "")},
		{"pod table", "GET", base + "/namespaces/default/pods?includeObject=Object", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", 200,
			func(t *testing.T, body []byte) {
				var tbl metav1.Table
				decodeJSON(t, body, &tbl)
				var cols []string
				for _, c := range tbl.ColumnDefinitions {
					cols = append(cols, c.Name)
				}
				if tbl.Kind != "Table" || tbl.APIVersion != "meta.k8s.io/v1" || !slices.Equal(cols, []string{"Name", "cpu", "memory", "Window"}) || len(tbl.Rows) != 2 {
					t.Fatalf("table %s %s %v rows %d", tbl.APIVersion, tbl.Kind, cols, len(tbl.Rows))
				}
				if got := fmt.Sprint(tbl.Rows[1].Cells); got != "[web 510m 72Mi 10s]" {
					t.Errorf("web row %s", got)
				}
				var obj metricsv1beta1.PodMetrics
				decodeJSON(t, tbl.Rows[1].Object.Raw, &obj)
				if obj.Kind != "PodMetrics" || obj.Name != "web" || len(obj.Containers) != 2 {
					t.Errorf("row object %s", tbl.Rows[1].Object.Raw)
				}
			}},
		{"node table with metadata rows", "GET", base + "/nodes/node1", "application/json;as=Table;v=v1beta1;g=meta.k8s.io", 200,
			func(t *testing.T, body []byte) {
				var tbl metav1.Table
				decodeJSON(t, body, &tbl)
				if tbl.APIVersion != "meta.k8s.io/v1beta1" || len(tbl.Rows) != 1 || fmt.Sprint(tbl.Rows[0].Cells) != "[node1 2 1Gi 10s]" {
					t.Fatalf("table %s", body)
				}
				var obj metav1.PartialObjectMetadata
				decodeJSON(t, tbl.Rows[0].Object.Raw, &obj)
				if obj.Kind != "PartialObjectMetadata" || obj.Name != "node1" {
					t.Errorf("row object %s", tbl.Rows[0].Object.Raw)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("code %d (%s), want %d: %s", rec.Code, rec.Header().Get("Content-Type"), tc.code, rec.Body)
			}
			tc.check(t, rec.Body.Bytes())
		})
	}
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
