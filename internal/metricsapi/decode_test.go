package metricsapi

import (
	"strings"
	"testing"
	"time"
)

// kubeletText is what the agent (and a kubelet) serves.
const kubeletText = `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 2.5 1782907500000
container_cpu_usage_seconds_total{container="sidecar",namespace="default",pod="web"} 1 1782907500000
container_cpu_usage_seconds_total{container="main",namespace="kube-system",pod="dns"} 0.25 1782907500000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 8.388608e+06 1782907500000
container_memory_working_set_bytes{container="sidecar",namespace="default",pod="web"} 1024 1782907500000
container_memory_working_set_bytes{container="main",namespace="kube-system",pod="dns"} 0 1782907500000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web"} 1.782907201e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 20745.4 1782907500000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 3.93609216e+09 1782907500000
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web"} 3.5 1782907500000
resource_scrape_error 0
`

func TestDecode(t *testing.T) {
	at := time.UnixMilli(1782907500000)
	scraped := time.UnixMilli(1782907600000)
	b, err := decode("node1", []byte(kubeletText), scraped)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.nodes["node1"]; n.cpu != 20745_400_000_000 || n.memory != 3936092160 || !n.timestamp.Equal(at) {
		t.Errorf("node %+v", n)
	}
	web := b.pods[podKey{"default", "web"}]
	if len(web) != 2 {
		t.Fatalf("web: %+v", web)
	}
	if app := web["app"]; app.cpu != 2_500_000_000 || app.memory != 8<<20 || !app.timestamp.Equal(at) ||
		!app.start.Equal(time.Unix(1782907201, 0)) {
		t.Errorf("app %+v", app)
	}
	// A container with a zero memory working set drops its pod (as
	// metrics-server does).
	if dns, ok := b.pods[podKey{"kube-system", "dns"}]; ok {
		t.Errorf("dns kept: %+v", dns)
	}
}

func TestDecodeCases(t *testing.T) {
	scraped := time.UnixMilli(1_000_000)
	for _, tc := range []struct {
		name, in   string
		err        bool
		node       bool
		pods       int
		checkPoint func(t *testing.T, b *batch)
	}{
		{name: "empty", in: ""},
		{name: "no timestamps: the scrape's time", in: "node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n" +
			`container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} 1` + "\n" +
			`container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 1` + "\n",
			node: true, pods: 1, checkPoint: func(t *testing.T, b *batch) {
				if !b.nodes["n1"].timestamp.Equal(scraped) || !b.pods[podKey{"n", "p"}]["c"].timestamp.Equal(scraped) {
					t.Errorf("timestamps %+v %+v", b.nodes, b.pods)
				}
			}},
		{name: "node without memory is dropped", in: "node_cpu_usage_seconds_total 1 5\n"},
		{name: "escaped label values and odd spacing", in: `container_cpu_usage_seconds_total{ container="a\"b" , namespace="n\\s",pod="p\n"  }   2  7` + "\n" +
			`container_memory_working_set_bytes{container="a\"b",namespace="n\\s",pod="p\n",} 3 7` + "\n",
			pods: 1, checkPoint: func(t *testing.T, b *batch) {
				if p, ok := b.pods[podKey{`n\s`, "p\n"}][`a"b`]; !ok || p.cpu != 2e9 || p.memory != 3 {
					t.Errorf("pods %+v", b.pods)
				}
			}},
		{name: "samples without pod labels are skipped", in: `container_cpu_usage_seconds_total{container="c"} 1 1` + "\n"},
		{name: "NaN, negative and huge values clamp", in: "node_cpu_usage_seconds_total NaN 1\nnode_memory_working_set_bytes 1e300 1\n" +
			`container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} -1 1` + "\n" +
			`container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 5 1` + "\n"},
		{name: "bad value", in: "node_cpu_usage_seconds_total one\n", err: true},
		{name: "bad timestamp", in: "node_cpu_usage_seconds_total 1 soon\n", err: true},
		{name: "unterminated labels", in: `container_cpu_usage_seconds_total{container="c` + "\n", err: true},
		{name: "label without quotes", in: `container_cpu_usage_seconds_total{container=c} 1` + "\n", err: true},
		{name: "trailing garbage", in: "node_cpu_usage_seconds_total 1 2 3\n", err: true},
		{name: "no value", in: "node_cpu_usage_seconds_total\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := decode("n1", []byte(tc.in), scraped)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error: %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if _, ok := b.nodes["n1"]; ok != tc.node || len(b.pods) != tc.pods {
				t.Errorf("nodes %+v pods %+v", b.nodes, b.pods)
			}
			if tc.checkPoint != nil {
				tc.checkPoint(t, b)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(kubeletText))
	for _, s := range strings.Split(kubeletText, "\n") {
		f.Add([]byte(s))
	}
	f.Add([]byte(`x{a="\`))
	f.Add([]byte(`x{a="b\"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = decode("n", in, time.Unix(0, 0))
	})
}
