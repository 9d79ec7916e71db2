package oci

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// minMemory is Docker's smallest memory limit (room for the runtime's
// own start-up).
const minMemory = 6 << 20

// cpuPeriod is the CFS period docker --cpus uses, in µs.
const cpuPeriod = 100_000

// NanoCPUs converts docker --cpus (as billionths of a CPU) to a CFS quota
// and period in µs, as Docker does: the period is 100ms and the quota its
// share of it (--cpus=1.5 is 150000/100000).
func NanoCPUs(n int64) (quota int64, period uint64) {
	return n * cpuPeriod / 1e9, cpuPeriod
}

// setResources puts the memory, CPU and pids limits on
// s.Linux.Resources, checked as Docker checks them.
func setResources(s *specs.Spec, r Resources, h *host) error {
	mem, err := memory(r, h)
	if err != nil {
		return err
	}
	cpu, err := cpu(r, h)
	if err != nil {
		return err
	}
	s.Linux.Resources.Memory = mem
	s.Linux.Resources.CPU = cpu
	switch {
	case r.PidsLimit > 0:
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
	case r.PidsLimit < 0:
		unlimited := int64(-1)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &unlimited}
	}
	return nil
}

func memory(r Resources, h *host) (*specs.LinuxMemory, error) {
	m, swap := r.MemoryBytes, r.MemorySwapBytes
	switch {
	case m != 0 && m < minMemory:
		return nil, fmt.Errorf("memory limit %d: the minimum is 6MiB: %w", m, errdefs.ErrInvalid)
	case swap < -1:
		return nil, fmt.Errorf("memory+swap limit %d: want -1 (unlimited), 0 (no swap) or a limit: %w", swap, errdefs.ErrInvalid)
	case swap > 0 && m == 0:
		return nil, fmt.Errorf("memory+swap limit needs a memory limit: %w", errdefs.ErrInvalid)
	case swap > 0 && swap < m:
		return nil, fmt.Errorf("memory+swap limit %d is below the memory limit %d: %w", swap, m, errdefs.ErrInvalid)
	case m == 0:
		return nil, nil
	}
	out := &specs.LinuxMemory{Limit: &m}
	if swap == 0 {
		swap = m
	}
	// -1 leaves swap alone (unlimited); so does a host that cannot limit it.
	if swap > 0 && h.swapLimit {
		out.Swap = &swap
	}
	return out, nil
}

func cpu(r Resources, h *host) (*specs.LinuxCPU, error) {
	switch {
	case r.NanoCPUs != 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0):
		return nil, fmt.Errorf("conflicting options: cpus cannot be set with a cpu quota or period: %w", errdefs.ErrInvalid)
	case r.NanoCPUs != 0 && (r.NanoCPUs < 1e7 || r.NanoCPUs > int64(h.numCPU)*1e9):
		return nil, fmt.Errorf("cpus %.3f: the range is 0.01 to %d (the CPUs available): %w", float64(r.NanoCPUs)/1e9, h.numCPU, errdefs.ErrInvalid)
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1_000_000):
		return nil, fmt.Errorf("cpu period %d: the range is 1000 to 1000000 (1ms to 1s): %w", r.CPUPeriod, errdefs.ErrInvalid)
	case r.CPUQuota < -1 || r.CPUQuota > 0 && r.CPUQuota < 1000:
		return nil, fmt.Errorf("cpu quota %d: the minimum is 1000 (1ms), or -1 for unlimited: %w", r.CPUQuota, errdefs.ErrInvalid)
	}
	for _, set := range []struct{ name, list string }{{"cpuset cpus", r.CpusetCpus}, {"cpuset mems", r.CpusetMems}} {
		if err := checkList(set.list); err != nil {
			return nil, fmt.Errorf("%s %q: %w", set.name, set.list, err)
		}
	}
	var out specs.LinuxCPU
	if r.CPUShares > 0 {
		shares := r.CPUShares
		out.Shares = &shares
	}
	if r.NanoCPUs > 0 {
		quota, period := NanoCPUs(r.NanoCPUs)
		out.Quota, out.Period = &quota, &period
	}
	if r.CPUPeriod != 0 {
		period := r.CPUPeriod
		out.Period = &period
	}
	if r.CPUQuota != 0 {
		quota := r.CPUQuota
		out.Quota = &quota
	}
	out.Cpus, out.Mems = r.CpusetCpus, r.CpusetMems
	if out == (specs.LinuxCPU{}) {
		return nil, nil
	}
	return &out, nil
}

// checkList checks the kernel's list syntax ("0-3,8").
func checkList(s string) error {
	if s == "" {
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err == nil && isRange {
			var b uint64
			if b, err = strconv.ParseUint(hi, 10, 16); err == nil && b < a {
				err = fmt.Errorf("descending range")
			}
		}
		if err != nil {
			return fmt.Errorf("want a list like 0-3,8: %w", errdefs.ErrInvalid)
		}
	}
	return nil
}

// rlimitNames are the resource limits runc can set.
var rlimitNames = []string{
	"AS", "CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE",
	"NICE", "NOFILE", "NPROC", "RSS", "RTPRIO", "RTTIME", "SIGPENDING", "STACK",
}

// rlimits are the caller's limits then, unless they set it, RLIMIT_NOFILE
// at DefaultNofile lowered to fs.nr_open. An RLIMIT_NOFILE above
// fs.nr_open is refused here rather than by setrlimit in the container.
func rlimits(list []Rlimit, h *host) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, l := range list {
		name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(l.Type)), "RLIMIT_")
		typ := "RLIMIT_" + name
		switch {
		case !slices.Contains(rlimitNames, name):
			return nil, fmt.Errorf("unknown rlimit %q: %w", l.Type, errdefs.ErrInvalid)
		case seen[typ]:
			return nil, fmt.Errorf("rlimit %s given twice: %w", typ, errdefs.ErrInvalid)
		case l.Soft > l.Hard:
			return nil, fmt.Errorf("rlimit %s: soft limit %d is above the hard limit %d: %w", typ, l.Soft, l.Hard, errdefs.ErrInvalid)
		case typ == "RLIMIT_NOFILE" && h.nrOpen > 0 && l.Hard > h.nrOpen:
			return nil, fmt.Errorf("rlimit %s: hard limit %s is above the host's fs.nr_open %d: %w", typ, limitString(l.Hard), h.nrOpen, errdefs.ErrInvalid)
		}
		seen[typ] = true
		out = append(out, specs.POSIXRlimit{Type: typ, Soft: l.Soft, Hard: l.Hard})
	}
	if !seen["RLIMIT_NOFILE"] {
		n := DefaultNofile
		if h.nrOpen > 0 && h.nrOpen < n {
			n = h.nrOpen
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: n, Hard: n})
	}
	return out, nil
}

func limitString(v uint64) string {
	if v == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
