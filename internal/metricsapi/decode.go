package metricsapi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// point is one sample of a node or container, as metrics-server keeps
// it: cumulative CPU in core-nanoseconds and the memory working set.
type point struct {
	// start is when the container (or node) started; cumulative CPU was
	// zero then. Zero when unknown.
	start     time.Time
	timestamp time.Time
	cpu       uint64 // core-nanoseconds
	memory    uint64 // bytes
}

type podKey struct{ namespace, name string }

// batch is what one scrape of one or more nodes found.
type batch struct {
	nodes map[string]point
	pods  map[podKey]map[string]point // container name → point
}

func newBatch() *batch {
	return &batch{nodes: map[string]point{}, pods: map[podKey]map[string]point{}}
}

// The kubelet's resource metrics this package reads.
const (
	nodeCPUMetric        = "node_cpu_usage_seconds_total"
	nodeMemoryMetric     = "node_memory_working_set_bytes"
	containerCPUMetric   = "container_cpu_usage_seconds_total"
	containerMemMetric   = "container_memory_working_set_bytes"
	containerStartMetric = "container_start_time_seconds"
)

// decode reads a node's /metrics/resource (Prometheus text format) as
// metrics-server does: samples without a timestamp are stamped
// with scraped; the node is kept only with a timestamp, CPU and memory;
// a pod is kept only if every container of it has non-zero CPU and
// memory. Other metrics are skipped. Nothing in the input may panic.
func decode(nodeName string, body []byte, scraped time.Time) (*batch, error) {
	b := newBatch()
	var node point
	pods := map[podKey]map[string]point{}
	for lineNo, line := range bytes.Split(body, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo+1, err)
		}
		at := scraped
		if s.hasTimestamp {
			at = time.UnixMilli(s.timestampMs)
		}
		switch s.name {
		case nodeCPUMetric:
			node.cpu, node.timestamp = cpuNanos(s.value), at
		case nodeMemoryMetric:
			node.memory, node.timestamp = uint64Of(s.value), at
		case containerCPUMetric, containerMemMetric, containerStartMetric:
			key := podKey{s.labels["namespace"], s.labels["pod"]}
			ctr := s.labels["container"]
			if key.name == "" || ctr == "" {
				continue
			}
			if pods[key] == nil {
				pods[key] = map[string]point{}
			}
			p := pods[key][ctr]
			switch s.name {
			case containerCPUMetric:
				p.cpu, p.timestamp = cpuNanos(s.value), at
			case containerMemMetric:
				p.memory, p.timestamp = uint64Of(s.value), at
			case containerStartMetric:
				if s.value > 0 && s.value < math.MaxInt64/1e9 {
					p.start = time.Unix(0, int64(s.value*1e9))
				}
			}
			pods[key][ctr] = p
		}
	}
	if !node.timestamp.IsZero() && node.cpu != 0 && node.memory != 0 {
		b.nodes[nodeName] = node
	}
pods:
	for key, containers := range pods {
		for _, p := range containers {
			if p.cpu == 0 || p.memory == 0 || p.timestamp.IsZero() {
				continue pods
			}
		}
		if len(containers) > 0 {
			b.pods[key] = containers
		}
	}
	return b, nil
}

// merge adds other's points to b; a node or pod already in b (reported
// by two nodes) keeps the first report.
func (b *batch) merge(other *batch) {
	for name, p := range other.nodes {
		if _, dup := b.nodes[name]; !dup {
			b.nodes[name] = p
		}
	}
	for key, containers := range other.pods {
		if _, dup := b.pods[key]; !dup {
			b.pods[key] = containers
		}
	}
}

func cpuNanos(seconds float64) uint64 { return uint64Of(seconds * 1e9) }

// uint64Of converts a sample value, clamping what does not fit (NaN and
// negatives are 0).
func uint64Of(v float64) uint64 {
	switch {
	case !(v > 0):
		return 0
	case v >= math.MaxUint64:
		return math.MaxUint64
	}
	return uint64(v)
}

// sample is one parsed line of the text format.
type sample struct {
	name         string
	labels       map[string]string
	value        float64
	hasTimestamp bool
	timestampMs  int64
}

var errSyntax = errors.New("malformed sample")

// parseSample parses `name{label="value",...} value [timestamp]`.
func parseSample(line []byte) (sample, error) {
	var s sample
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	if i == 0 {
		return s, errSyntax
	}
	s.name = string(line[:i])
	rest := line[i:]
	if len(rest) > 0 && rest[0] == '{' {
		labels, n, err := parseLabels(rest)
		if err != nil {
			return s, err
		}
		s.labels, rest = labels, rest[n:]
	}
	fields := bytes.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, errSyntax
	}
	v, err := strconv.ParseFloat(string(fields[0]), 64)
	if err != nil {
		return s, fmt.Errorf("%w: value %q", errSyntax, fields[0])
	}
	s.value = v
	if len(fields) == 2 {
		ts, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			return s, fmt.Errorf("%w: timestamp %q", errSyntax, fields[1])
		}
		s.hasTimestamp, s.timestampMs = true, ts
	}
	return s, nil
}

// parseLabels parses `{a="x",b="y"}` at the start of b and returns the
// labels and the number of bytes read.
func parseLabels(b []byte) (map[string]string, int, error) {
	labels := map[string]string{}
	i := 1 // past '{'
	for {
		for i < len(b) && (b[i] == ' ' || b[i] == ',') {
			i++
		}
		if i >= len(b) {
			return nil, 0, errSyntax
		}
		if b[i] == '}' {
			return labels, i + 1, nil
		}
		eq := bytes.IndexByte(b[i:], '=')
		if eq <= 0 {
			return nil, 0, errSyntax
		}
		name := string(bytes.TrimSpace(b[i : i+eq]))
		i += eq + 1
		if i >= len(b) || b[i] != '"' {
			return nil, 0, errSyntax
		}
		i++
		var val []byte
		for {
			if i >= len(b) {
				return nil, 0, errSyntax
			}
			c := b[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				if i+1 >= len(b) {
					return nil, 0, errSyntax
				}
				i++
				switch b[i] {
				case 'n':
					c = '\n'
				default: // \\ and \"
					c = b[i]
				}
			}
			val = append(val, c)
			i++
		}
		labels[name] = string(val)
	}
}
