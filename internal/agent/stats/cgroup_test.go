package stats

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
)

const (
	v1Pod = "/skiff/pods/pod11111111-1111-1111-1111-111111111111"
	v2Pod = "/skiff/pods/pod22222222-2222-2222-2222-222222222222"
)

func TestCgroupLayout(t *testing.T) {
	for _, tc := range []struct {
		name, root, cpu, memory string
	}{
		{"hybrid: v1 controllers win over the unified hierarchy", "testdata/v1", "v1", "v1"},
		{"unified", "testdata/v2", "v2", "v2"},
		{"nothing mounted", t.TempDir(), "none", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpu, mem := (&cgroupFS{root: tc.root}).layout()
			if cpu != tc.cpu || mem != tc.memory {
				t.Errorf("layout cpu=%s memory=%s, want %s %s", cpu, mem, tc.cpu, tc.memory)
			}
		})
	}
}

func TestCgroupRead(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		name, root, path string
		cpu              uint64
		mem              memSample
	}{
		{
			name: "v1 pod: hierarchical totals, no limit", root: "testdata/v1", path: v1Pod,
			cpu: 3_500_000_000,
			mem: memSample{usage: 20 * mi, workingSet: 16 * mi, rss: 12 * mi, pageFaults: 5000, majorPageFaults: 3},
		},
		{
			name: "v1 container with a limit", root: "testdata/v1", path: v1Pod + "/aaaa",
			cpu: 2_500_000_000,
			mem: memSample{usage: 10 * mi, workingSet: 8 * mi, rss: 6 * mi, pageFaults: 3000, majorPageFaults: 2, limit: 128 * mi},
		},
		{
			name: "v1 container with more inactive file pages than usage", root: "testdata/v1", path: v1Pod + "/bbbb",
			cpu: 1_000_000_000,
			mem: memSample{usage: mi, workingSet: 0, rss: mi / 2, pageFaults: 100},
		},
		{
			name: "v2 pod: memory.max is max", root: "testdata/v2", path: v2Pod,
			cpu: 4_200_000_000,
			mem: memSample{usage: 30 * mi, workingSet: 22 * mi, rss: 16 * mi, pageFaults: 7000, majorPageFaults: 4},
		},
		{
			name: "v2 container with a limit", root: "testdata/v2", path: v2Pod + "/cccc",
			cpu: 4_000_000_000,
			mem: memSample{usage: 29 * mi, workingSet: 21 * mi, rss: 16 * mi, pageFaults: 6900, majorPageFaults: 4, limit: 256 * mi},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cgroupFS{root: tc.root}
			cpu, err := c.cpu(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if cpu.usageNanos != tc.cpu {
				t.Errorf("cpu %d, want %d", cpu.usageNanos, tc.cpu)
			}
			mem, err := c.memory(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if mem != tc.mem {
				t.Errorf("memory %+v\nwant   %+v", mem, tc.mem)
			}
		})
	}
}

func TestCgroupMissing(t *testing.T) {
	for _, root := range []string{"testdata/v1", "testdata/v2", t.TempDir()} {
		c := &cgroupFS{root: root}
		if _, err := c.cpu("/skiff/pods/podgone/x"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: cpu of a missing cgroup: %v, want ErrNotExist", root, err)
		}
		if _, err := c.memory("/skiff/pods/podgone/x"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: memory of a missing cgroup: %v, want ErrNotExist", root, err)
		}
	}
}

func TestProc(t *testing.T) {
	p := procFS{root: "testdata/proc"}
	cpu, boot, err := p.nodeCPU()
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal ticks, 10 ms each.
	if want := uint64(1749387+46589+264979+0+10200+3385) * 10_000_000; cpu != want {
		t.Errorf("node cpu %d, want %d", cpu, want)
	}
	if boot != 1795693806 {
		t.Errorf("boot time %d", boot)
	}
	mem, err := p.nodeMemory()
	if err != nil {
		t.Fatal(err)
	}
	want := memSample{limit: 24731708 * 1024, usage: (24731708 - 17820524) * 1024,
		workingSet: (24731708 - 17820524 - 3067344) * 1024, rss: 302324 * 1024}
	if mem != want {
		t.Errorf("node memory %+v\nwant        %+v", mem, want)
	}
	if _, _, err := (procFS{root: t.TempDir()}).nodeCPU(); err == nil {
		t.Error("no /proc/stat: no error")
	}
}

func TestStatValues(t *testing.T) {
	got := statValues([]byte("a 1\nb  x\nc 18446744073709551615\n\nd\n e 2\nb 3"), "c", "a", "b", "e", "missing")
	if want := []uint64{18446744073709551615, 1, 3, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("statValues: %v, want %v", got, want)
	}
}
