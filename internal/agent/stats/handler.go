package stats

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Paths the handler serves, as the kubelet does.
const (
	ResourceMetricsPath = "/metrics/resource"
	SummaryPath         = "/stats/summary"
)

// Handler serves the collector's samples on ResourceMetricsPath
// (Prometheus text format 0.0.4 with the kubelet's metric names, labels
// and sample timestamps) and SummaryPath (the Summary API's JSON; the
// kubelet's only_cpu_and_memory query is accepted and is what is served
// anyway). It answers GET and HEAD.
func Handler(c *Collector) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ResourceMetricsPath, func(w http.ResponseWriter, r *http.Request) {
		s, err := c.Summary(r.Context())
		if err != nil {
			c.log.Warn("resource metrics", "err", err)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeResourceMetrics(w, s)
	})
	mux.HandleFunc("GET "+SummaryPath, func(w http.ResponseWriter, r *http.Request) {
		s, err := c.Summary(r.Context())
		if err != nil {
			c.log.Warn("stats summary", "err", err)
			http.Error(w, "failed to get node stats: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s)
	})
	return mux
}

// family is one metric family of the kubelet's resource metrics.
type family struct {
	name, help, typ string
	samples         []sample
}

type sample struct {
	labels []string // container, namespace, pod (those that apply), in that order
	value  float64
	at     time.Time // zero: no timestamp
}

// writeResourceMetrics writes s as the kubelet's /metrics/resource does:
// families sorted by name, samples by label values; a nil s (the node
// could not be read) gives only resource_scrape_error 1.
func writeResourceMetrics(w io.Writer, s *Summary) {
	ctrCPU := family{name: "container_cpu_usage_seconds_total", typ: "counter",
		help: "[STABLE] Cumulative cpu time consumed by the container in core-seconds"}
	ctrMem := family{name: "container_memory_working_set_bytes", typ: "gauge",
		help: "[STABLE] Current working set of the container in bytes"}
	ctrStart := family{name: "container_start_time_seconds", typ: "gauge",
		help: "[STABLE] Start time of the container since unix epoch in seconds"}
	nodeCPU := family{name: "node_cpu_usage_seconds_total", typ: "counter",
		help: "[STABLE] Cumulative cpu time consumed by the node in core-seconds"}
	nodeMem := family{name: "node_memory_working_set_bytes", typ: "gauge",
		help: "[STABLE] Current working set of the node in bytes"}
	podCPU := family{name: "pod_cpu_usage_seconds_total", typ: "counter",
		help: "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"}
	podMem := family{name: "pod_memory_working_set_bytes", typ: "gauge",
		help: "[STABLE] Current working set of the pod in bytes"}
	scrapeErr := family{name: "resource_scrape_error", typ: "gauge",
		help:    "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
		samples: []sample{{value: 1}}}

	if s != nil {
		scrapeErr.samples[0].value = 0
		addCPU(&nodeCPU, s.Node.CPU)
		addMemory(&nodeMem, s.Node.Memory)
		for _, p := range s.Pods {
			for _, c := range p.Containers {
				labels := []string{c.Name, p.PodRef.Namespace, p.PodRef.Name}
				if c.StartTime.Unix() > 0 {
					ctrStart.samples = append(ctrStart.samples, sample{labels: labels,
						value: float64(c.StartTime.UnixNano()) / float64(time.Second)})
				}
				addCPU(&ctrCPU, c.CPU, labels...)
				addMemory(&ctrMem, c.Memory, labels...)
			}
			addCPU(&podCPU, p.CPU, p.PodRef.Namespace, p.PodRef.Name)
			addMemory(&podMem, p.Memory, p.PodRef.Namespace, p.PodRef.Name)
		}
	}
	bw := bufio.NewWriter(w)
	for _, f := range []*family{&ctrCPU, &ctrMem, &ctrStart, &nodeCPU, &nodeMem, &podCPU, &podMem, &scrapeErr} {
		f.write(bw)
	}
	bw.Flush()
}

func addCPU(f *family, cs *CPUStats, labels ...string) {
	if cs == nil || cs.UsageCoreNanoSeconds == nil {
		return
	}
	f.samples = append(f.samples, sample{labels: labels, at: cs.Time.Time,
		value: float64(*cs.UsageCoreNanoSeconds) / float64(time.Second)})
}

func addMemory(f *family, ms *MemoryStats, labels ...string) {
	if ms == nil || ms.WorkingSetBytes == nil {
		return
	}
	f.samples = append(f.samples, sample{labels: labels, at: ms.Time.Time, value: float64(*ms.WorkingSetBytes)})
}

// labelNames by number of labels: the container families have three,
// the pod families two.
var labelNames = map[int][]string{2: {"namespace", "pod"}, 3: {"container", "namespace", "pod"}}

// write writes the family in the text format; a family without samples
// is left out, as a registry gathering it would.
func (f *family) write(w *bufio.Writer) {
	if len(f.samples) == 0 {
		return
	}
	slices.SortFunc(f.samples, func(a, b sample) int { return slices.Compare(a.labels, b.labels) })
	w.WriteString("# HELP " + f.name + " " + f.help + "\n")
	w.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
	var num []byte
	for _, s := range f.samples {
		w.WriteString(f.name)
		if names := labelNames[len(s.labels)]; names != nil {
			w.WriteByte('{')
			for i, v := range s.labels {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(names[i] + `="`)
				w.WriteString(escapeLabel(v))
				w.WriteByte('"')
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		num = strconv.AppendFloat(num[:0], s.value, 'g', -1, 64)
		w.Write(num)
		if !s.at.IsZero() {
			w.WriteByte(' ')
			num = strconv.AppendInt(num[:0], s.at.UnixMilli(), 10)
			w.Write(num)
		}
		w.WriteByte('\n')
	}
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\n\"") {
		return v
	}
	return labelEscaper.Replace(v)
}
