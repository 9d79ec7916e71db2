package stats

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/internal/agent/podruntime"
)

// BenchmarkScrape100Containers is one /metrics/resource scrape of a node
// with 50 pods of two containers each (cgroup v1 fixture files, as on
// this host): 150 cgroups read and rendered.
func BenchmarkScrape100Containers(b *testing.B) {
	for _, layout := range []string{"v1", "v2"} {
		b.Run(layout, func(b *testing.B) {
			root := b.TempDir()
			rt := fixtureNode(b, root, layout, 50, 2)
			h := Handler(New(rt, Options{NodeName: "node1", CgroupRoot: root, ProcRoot: "testdata/proc"}))
			req := httptest.NewRequest(http.MethodGet, ResourceMetricsPath, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				io.Copy(io.Discard, rec.Body)
			}
		})
	}
}

// fixtureNode writes cgroup files for pods×containers under root and
// returns the runtime listing them.
func fixtureNode(b *testing.B, root, layout string, pods, containers int) fakeRuntime {
	var rt fakeRuntime
	write := func(dir, name, content string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	statFile := map[string]string{
		"v1": filepath.Join("testdata/v1/memory", v1Pod, "memory.stat"),
		"v2": filepath.Join("testdata/v2", v2Pod, "memory.stat"),
	}[layout]
	stat, err := os.ReadFile(statFile)
	if err != nil {
		b.Fatal(err)
	}
	cgroup := func(path string) {
		switch layout {
		case "v1":
			write(filepath.Join(root, "cpuacct", path), "cpuacct.usage", "123456789\n")
			d := filepath.Join(root, "memory", path)
			write(d, "memory.usage_in_bytes", "10485760\n")
			write(d, "memory.limit_in_bytes", "9223372036854771712\n")
			write(d, "memory.stat", string(stat))
		case "v2":
			d := filepath.Join(root, path)
			write(d, "cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n")
			write(d, "memory.current", "10485760\n")
			write(d, "memory.max", "max\n")
			write(d, "memory.stat", string(stat))
		}
	}
	switch layout {
	case "v1":
		write(filepath.Join(root, "cpuacct"), "cpuacct.usage", "1\n")
		write(filepath.Join(root, "memory"), "memory.usage_in_bytes", "1\n")
	case "v2":
		write(root, "cgroup.controllers", "cpu memory\n")
	}
	for i := range pods {
		uid := fmt.Sprintf("uid-%03d", i)
		p := podruntime.PodCgroups{PodUID: uid, Namespace: "default", Name: fmt.Sprintf("pod-%03d", i),
			StartTime: started, Cgroup: "/skiff/pods/pod" + uid}
		cgroup(p.Cgroup)
		for j := range containers {
			c := podruntime.ContainerCgroup{ID: fmt.Sprintf("%s-c%d", uid, j), Name: fmt.Sprintf("c%d", j), StartTime: started}
			c.Cgroup = p.Cgroup + "/" + c.ID
			cgroup(c.Cgroup)
			p.Containers = append(p.Containers, c)
		}
		rt = append(rt, p)
	}
	return rt
}
