package stats

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skiff.dev/skiff/internal/agent/podruntime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeRuntime lists fixed pods.
type fakeRuntime []podruntime.PodCgroups

func (f fakeRuntime) Cgroups() []podruntime.PodCgroups { return f }

var (
	started = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	now     = time.Date(2026, 7, 1, 12, 5, 0, 0, time.UTC)
)

func fixturePods(podDir, uid string, containers ...string) fakeRuntime {
	p := podruntime.PodCgroups{PodUID: uid, Namespace: "default", Name: "web", StartTime: started, Cgroup: podDir}
	for _, id := range containers {
		p.Containers = append(p.Containers, podruntime.ContainerCgroup{
			ID: id, Name: "c-" + id, StartTime: started.Add(time.Second), Cgroup: podDir + "/" + id})
	}
	return fakeRuntime{
		// A pod whose containers have not started: no cgroup yet.
		{PodUID: "33333333", Namespace: "kube-system", Name: "pending", StartTime: started, Cgroup: "/skiff/pods/pod33333333"},
		p,
	}
}

// TestHandlerGolden renders both endpoints for a v1 (hybrid) and a v2
// fixture tree; an exited container (no cgroup) is left out.
func TestHandlerGolden(t *testing.T) {
	for _, tc := range []struct {
		name, root string
		pods       fakeRuntime
	}{
		{"v1", "testdata/v1", fixturePods(v1Pod, "11111111-1111-1111-1111-111111111111", "aaaa", "bbbb", "exited")},
		{"v2", "testdata/v2", fixturePods(v2Pod, "22222222-2222-2222-2222-222222222222", "cccc", "exited")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(New(tc.pods, Options{NodeName: "node1", CgroupRoot: tc.root, ProcRoot: "testdata/proc",
				Now: func() time.Time { return now }}))
			for _, ep := range []struct{ path, golden, ctype string }{
				{ResourceMetricsPath, tc.name + "-resource-metrics.txt", "text/plain; version=0.0.4; charset=utf-8"},
				{SummaryPath, tc.name + "-summary.json", "application/json"},
			} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ep.path, nil))
				if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ep.ctype {
					t.Fatalf("%s: %d %q: %s", ep.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
				}
				golden(t, ep.golden, rec.Body.Bytes())
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestHandlerErrors(t *testing.T) {
	broken := Handler(New(fakeRuntime{}, Options{CgroupRoot: t.TempDir(), ProcRoot: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"node unreadable: metrics say so", http.MethodGet, ResourceMetricsPath, http.StatusOK,
			"# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n" +
				"# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n"},
		{"node unreadable: summary fails", http.MethodGet, SummaryPath, http.StatusInternalServerError, ""},
		{"POST", http.MethodPost, ResourceMetricsPath, http.StatusMethodNotAllowed, ""},
		{"unknown path", http.MethodGet, "/metrics/cadvisor", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			broken.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if tc.body != "" && rec.Body.String() != tc.body {
				t.Errorf("body:\n%s\nwant:\n%s", rec.Body, tc.body)
			}
		})
	}
}

// TestUsageNanoCores: the summary reports the CPU rate since the previous
// sample of the same cgroup.
func TestUsageNanoCores(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cpuacct", "skiff", "pods", "podu", "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpuacct.usage", "1000000000")
	os.WriteFile(filepath.Join(root, "cpuacct", "cpuacct.usage"), []byte("1\n"), 0o644)
	clock := now
	c := New(fakeRuntime{{PodUID: "u", Namespace: "ns", Name: "p", Cgroup: "/skiff/pods/podu",
		Containers: []podruntime.ContainerCgroup{{ID: "c1", Name: "main", Cgroup: "/skiff/pods/podu/c1"}}}},
		Options{CgroupRoot: root, ProcRoot: "testdata/proc", Now: func() time.Time { return clock }})
	ctx := context.Background()
	s, err := c.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := s.Pods[0].Containers[0].CPU
	if cs.UsageNanoCores != nil || *cs.UsageCoreNanoSeconds != 1e9 {
		t.Fatalf("first sample: %+v", cs)
	}
	if s.Pods[0].Containers[0].Memory != nil {
		t.Errorf("memory without a memory cgroup: %+v", s.Pods[0].Containers[0].Memory)
	}
	// Half a core over two seconds.
	write("cpuacct.usage", "2000000000")
	clock = clock.Add(2 * time.Second)
	if s, err = c.Summary(ctx); err != nil {
		t.Fatal(err)
	}
	if cs := s.Pods[0].Containers[0].CPU; cs.UsageNanoCores == nil || *cs.UsageNanoCores != 500_000_000 {
		t.Errorf("second sample: %+v", cs)
	}
}

func TestEscapeLabel(t *testing.T) {
	for in, want := range map[string]string{`plain`: `plain`, `a"b`: `a\"b`, "a\\b\nc": `a\\b\nc`} {
		if got := escapeLabel(in); got != want {
			t.Errorf("escapeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
