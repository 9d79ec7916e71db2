// Package stats is the node agent's resource usage: CPU and memory of
// every running container, of every pod (its cgroup /skiff/pods/pod<uid>)
// and of the node, read from cgroup v1 or v2 files and /proc. Handler
// serves them as the kubelet does, as Prometheus text on
// /metrics/resource (what metrics-server, and so Skiff's
// metrics.k8s.io, scrapes) and as the Summary API's JSON on
// /stats/summary. The agent's HTTPS server mounts the handler; only the
// daemon wires it.
package stats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
)

// Runtime lists the pods and running containers with their cgroups:
// podruntime.Manager.
type Runtime interface {
	Cgroups() []podruntime.PodCgroups
}

// Options configure a Collector.
type Options struct {
	// NodeName names the node in the summary.
	NodeName string
	// CgroupRoot is where the cgroup hierarchies are mounted (default
	// /sys/fs/cgroup); ProcRoot is /proc (default). Tests point them at
	// fixture trees.
	CgroupRoot, ProcRoot string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default(); component=stats is added.
	Logger *slog.Logger
}

// Collector samples usage. It remembers each cgroup's previous CPU
// sample to report a rate (usageNanoCores) in the summary.
type Collector struct {
	rt   Runtime
	opts Options
	cg   *cgroupFS
	proc procFS
	log  *slog.Logger

	mu   sync.Mutex
	prev map[string]cpuPoint // by cgroup path; nodeKey for the node
}

type cpuPoint struct {
	at    time.Time
	usage uint64
}

const nodeKey = "node"

// New returns a Collector; it does no I/O.
func New(rt Runtime, opts Options) *Collector {
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Collector{
		rt:   rt,
		opts: opts,
		cg:   &cgroupFS{root: opts.CgroupRoot},
		proc: procFS{root: opts.ProcRoot},
		log:  opts.Logger.With("component", "stats"),
		prev: map[string]cpuPoint{},
	}
}

// Summary samples the node, its pods and their running containers. It
// fails only when the node's own usage cannot be read; a container
// whose cgroup is gone (it exited) is left out, and so is the CPU or
// memory of a cgroup that cannot be read.
func (c *Collector) Summary(ctx context.Context) (*Summary, error) {
	s := &Summary{Node: NodeStats{NodeName: c.opts.NodeName}, Pods: []PodStats{}}
	seen := map[string]cpuPoint{}

	usage, boot, err := c.proc.nodeCPU()
	if err != nil {
		return nil, fmt.Errorf("node cpu: %w", err)
	}
	now := c.opts.Now()
	s.Node.StartTime = metav1.NewTime(time.Unix(boot, 0))
	s.Node.CPU = c.cpuStats(nodeKey, cpuSample{usageNanos: usage}, now, seen)
	mem, err := c.proc.nodeMemory()
	if err != nil {
		return nil, fmt.Errorf("node memory: %w", err)
	}
	s.Node.Memory = memoryStats(mem, now)
	s.Node.Memory.PageFaults, s.Node.Memory.MajorPageFaults = nil, nil // not in /proc/meminfo

	for _, p := range c.rt.Cgroups() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps := PodStats{
			PodRef:     PodReference{Name: p.Name, Namespace: p.Namespace, UID: p.PodUID},
			StartTime:  metav1.NewTime(p.StartTime),
			Containers: make([]ContainerStats, 0, len(p.Containers)),
		}
		ps.CPU, ps.Memory = c.sample(p.Cgroup, seen)
		for _, ctr := range p.Containers {
			cpu, mem := c.sample(ctr.Cgroup, seen)
			if cpu == nil && mem == nil {
				continue // exited, or not started yet
			}
			ps.Containers = append(ps.Containers, ContainerStats{
				Name: ctr.Name, StartTime: metav1.NewTime(ctr.StartTime), CPU: cpu, Memory: mem,
			})
		}
		s.Pods = append(s.Pods, ps)
	}
	c.mu.Lock()
	c.prev = seen
	c.mu.Unlock()
	return s, nil
}

// sample reads one cgroup; nil for what cannot be read.
func (c *Collector) sample(path string, seen map[string]cpuPoint) (*CPUStats, *MemoryStats) {
	var (
		cs *CPUStats
		ms *MemoryStats
	)
	cpu, err := c.cg.cpu(path)
	now := c.opts.Now()
	if err == nil {
		cs = c.cpuStats(path, cpu, now, seen)
	} else {
		c.readError(path, "cpu", err)
	}
	mem, err := c.cg.memory(path)
	if err == nil {
		ms = memoryStats(mem, now)
	} else {
		c.readError(path, "memory", err)
	}
	return cs, ms
}

func (c *Collector) readError(path, what string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	c.log.Debug("read cgroup", "cgroup", path, "resource", what, "err", err)
}

// cpuStats records the sample in seen and computes the rate since the
// previous one of the same cgroup.
func (c *Collector) cpuStats(key string, cpu cpuSample, now time.Time, seen map[string]cpuPoint) *CPUStats {
	total := cpu.usageNanos
	cs := &CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: &total}
	c.mu.Lock()
	prev, ok := c.prev[key]
	c.mu.Unlock()
	if ok && now.After(prev.at) && total >= prev.usage {
		rate := uint64(float64(total-prev.usage) / now.Sub(prev.at).Seconds())
		cs.UsageNanoCores = &rate
	}
	seen[key] = cpuPoint{at: now, usage: total}
	return cs
}

func memoryStats(m memSample, now time.Time) *MemoryStats {
	ms := &MemoryStats{
		Time:            metav1.NewTime(now),
		UsageBytes:      ptr(m.usage),
		WorkingSetBytes: ptr(m.workingSet),
		RSSBytes:        ptr(m.rss),
		PageFaults:      ptr(m.pageFaults),
		MajorPageFaults: ptr(m.majorPageFaults),
	}
	if m.limit > 0 {
		avail := uint64(0)
		if m.limit > m.workingSet {
			avail = m.limit - m.workingSet
		}
		ms.AvailableBytes = &avail
	}
	return ms
}

func ptr(v uint64) *uint64 { return &v }
