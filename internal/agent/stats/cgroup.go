package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// cgroupFS reads CPU and memory usage of cgroups under a root (normally
// /sys/fs/cgroup) in any layout: cgroup v1 controllers under
// <root>/<controller>, cgroup v2 at <root> or at <root>/unified (the
// hybrid layout). A controller mounted as v1 is read there; otherwise the
// unified hierarchy is used.
type cgroupFS struct {
	root string

	once    sync.Once
	cpuV1   string // the v1 cpuacct hierarchy, or ""
	memV1   string // the v1 memory hierarchy, or ""
	unified string // the v2 hierarchy, or ""
}

// cpuSample is a cgroup's cumulative CPU time.
type cpuSample struct {
	usageNanos uint64
}

// memSample is a cgroup's memory usage as cadvisor reports it.
type memSample struct {
	usage, workingSet, rss, pageFaults, majorPageFaults uint64
	// limit is the cgroup's limit; 0 when unlimited.
	limit uint64
}

// unlimited: limits at or above this are "no limit" (v1 writes
// PAGE_COUNTER_MAX pages, about 2^63).
const unlimited = 1 << 62

func (c *cgroupFS) detect() {
	c.once.Do(func() {
		for _, d := range []string{"cpuacct", "cpu,cpuacct", "cpuacct,cpu"} {
			if isFile(filepath.Join(c.root, d, "cpuacct.usage")) {
				c.cpuV1 = filepath.Join(c.root, d)
				break
			}
		}
		if isFile(filepath.Join(c.root, "memory", "memory.usage_in_bytes")) {
			c.memV1 = filepath.Join(c.root, "memory")
		}
		for _, d := range []string{c.root, filepath.Join(c.root, "unified")} {
			if isFile(filepath.Join(d, "cgroup.controllers")) {
				c.unified = d
				break
			}
		}
	})
}

// layout says which hierarchies were found (for logs and tests).
func (c *cgroupFS) layout() (cpu, memory string) {
	c.detect()
	cpu, memory = "none", "none"
	switch {
	case c.cpuV1 != "":
		cpu = "v1"
	case c.unified != "":
		cpu = "v2"
	}
	switch {
	case c.memV1 != "":
		memory = "v1"
	case c.unified != "":
		memory = "v2"
	}
	return cpu, memory
}

// cpu reads the cumulative CPU usage of the cgroup at path (absolute
// within the hierarchy, "/" for the root). A cgroup that does not exist
// wraps fs.ErrNotExist.
func (c *cgroupFS) cpu(path string) (cpuSample, error) {
	c.detect()
	switch {
	case c.cpuV1 != "":
		v, err := readUint(filepath.Join(c.cpuV1, path, "cpuacct.usage"))
		return cpuSample{usageNanos: v}, err
	case c.unified != "":
		b, err := os.ReadFile(filepath.Join(c.unified, path, "cpu.stat"))
		if err != nil {
			return cpuSample{}, err
		}
		return cpuSample{usageNanos: statValues(b, "usage_usec")[0] * 1000}, nil
	}
	return cpuSample{}, fmt.Errorf("no cpu accounting cgroup under %s: %w", c.root, fs.ErrNotExist)
}

// memoryFiles names the files and memory.stat keys cadvisor reads in
// each cgroup version.
type memoryFiles struct {
	usage, limit                           string
	inactiveFile, rss, pgfault, pgmajfault string
}

var (
	memoryV1 = memoryFiles{usage: "memory.usage_in_bytes", limit: "memory.limit_in_bytes",
		inactiveFile: "total_inactive_file", rss: "total_rss", pgfault: "total_pgfault", pgmajfault: "total_pgmajfault"}
	memoryV2 = memoryFiles{usage: "memory.current", limit: "memory.max",
		inactiveFile: "inactive_file", rss: "anon", pgfault: "pgfault", pgmajfault: "pgmajfault"}
)

// memory reads the memory usage of the cgroup at path; the working set
// is the usage less inactive file pages, as cadvisor (and so the kubelet)
// computes it.
func (c *cgroupFS) memory(path string) (memSample, error) {
	c.detect()
	var (
		dir   string
		files memoryFiles
	)
	switch {
	case c.memV1 != "":
		dir, files = filepath.Join(c.memV1, path), memoryV1
	case c.unified != "":
		dir, files = filepath.Join(c.unified, path), memoryV2
	default:
		return memSample{}, fmt.Errorf("no memory cgroup under %s: %w", c.root, fs.ErrNotExist)
	}
	usage, err := readUint(filepath.Join(dir, files.usage))
	if err != nil {
		return memSample{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return memSample{}, err
	}
	v := statValues(b, files.inactiveFile, files.rss, files.pgfault, files.pgmajfault)
	m := memSample{usage: usage, rss: v[1], pageFaults: v[2], majorPageFaults: v[3]}
	if inactive := v[0]; inactive < usage {
		m.workingSet = usage - inactive
	}
	// The limit is optional (v2 has no memory.max at the root).
	if l, err := readUint(filepath.Join(dir, files.limit)); err == nil && l < unlimited {
		m.limit = l
	}
	return m, nil
}

// readUint reads a file holding one unsigned number ("max" reads as
// unlimited).
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return unlimited, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// statValues returns the values of keys in "key value" lines
// (memory.stat, cpu.stat), 0 for a key that is absent or does not parse.
func statValues(b []byte, keys ...string) []uint64 {
	out := make([]uint64, len(keys))
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		for i, key := range keys {
			if string(k) == key {
				out[i], _ = strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
				break
			}
		}
	}
	return out
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// procFS reads the node's totals from /proc.
type procFS struct{ root string }

// userHZ is the unit of /proc/stat's CPU times: USER_HZ, 100 on Linux
// whatever the kernel's HZ.
const userHZ = 100

// nodeCPU sums the busy CPU time of all CPUs in /proc/stat; bootTime is
// its btime (seconds since the epoch).
func (p procFS) nodeCPU() (usageNanos uint64, bootTime int64, err error) {
	f, err := os.Open(filepath.Join(p.root, "stat"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "cpu":
			// user nice system idle iowait irq softirq steal [guest guest_nice]
			// (guest time is already in user and nice).
			if len(fields) < 9 {
				return 0, 0, fmt.Errorf("/proc/stat: short cpu line")
			}
			var ticks uint64
			for _, i := range []int{1, 2, 3, 6, 7, 8} {
				v, err := strconv.ParseUint(fields[i], 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/stat: %w", err)
				}
				ticks += v
			}
			usageNanos, found = ticks*(1e9/userHZ), true
		case "btime":
			if len(fields) > 1 {
				bootTime, _ = strconv.ParseInt(fields[1], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu line")
	}
	return usageNanos, bootTime, nil
}

// nodeMemory reads /proc/meminfo: usage is what is not free, the working
// set that less inactive file pages, the limit the machine's memory.
func (p procFS) nodeMemory() (memSample, error) {
	b, err := os.ReadFile(filepath.Join(p.root, "meminfo"))
	if err != nil {
		return memSample{}, err
	}
	kb := map[string]uint64{}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			kb[string(k)] = n * 1024
		}
	}
	total, ok := kb["MemTotal"]
	if !ok {
		return memSample{}, fmt.Errorf("/proc/meminfo: no MemTotal")
	}
	m := memSample{limit: total}
	if free := kb["MemFree"]; free < total {
		m.usage = total - free
	}
	if inactive := kb["Inactive(file)"]; inactive < m.usage {
		m.workingSet = m.usage - inactive
	}
	m.rss = kb["AnonPages"]
	return m, nil
}
