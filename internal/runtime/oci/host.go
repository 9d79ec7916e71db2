package oci

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// host is what a spec depends on about the machine that runs it. Spec
// probes it once per process; tests pass fixed facts so that golden files
// do not depend on the machine.
type host struct {
	// cgroup2: /sys/fs/cgroup is a pure cgroup v2 mount. Containers then
	// get a private cgroup namespace (Docker's default there); on v1 and
	// hybrid hosts they see the host's.
	cgroup2 bool
	// swapLimit: the memory cgroup can limit swap. Without it, like
	// Docker, memory is limited and swap left alone.
	swapLimit bool
	// nrOpen is fs.nr_open, the ceiling of RLIMIT_NOFILE; 0 if unknown.
	nrOpen uint64
	// caps are the capabilities this process holds (effective set), in
	// kernel order: what "ALL" and --privileged grant.
	caps []string
	// maskedExtra are the per-CPU thermal_throttle directories, which
	// Docker masks when present.
	maskedExtra []string
	// rro: read-only binds can be made recursively read-only (kernel
	// 5.12+, mount_setattr), which Docker then does.
	rro bool
	// numCPU bounds NanoCPUs.
	numCPU int
	// devices lists the host's device nodes for --privileged.
	devices func() ([]specs.LinuxDevice, error)
}

// probeHost returns this machine's facts, probed once.
var probeHost = sync.OnceValue(func() *host {
	h := &host{
		nrOpen:  readUint("/proc/sys/fs/nr_open"),
		caps:    currentCaps(),
		rro:     kernelAtLeast(5, 12),
		numCPU:  runtime.NumCPU(),
		devices: hostDevices,
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.cgroup2 = true
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		h.swapLimit = containsField(string(ctrl), "memory")
	} else {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		h.swapLimit = err == nil
	}
	for _, cpu := range parseCPUList(readString("/sys/devices/system/cpu/possible")) {
		p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
		if _, err := os.Stat(p); err == nil {
			h.maskedExtra = append(h.maskedExtra, p)
		}
	}
	return h
})

// knownCaps are the capability names this build knows, in kernel order.
func knownCaps() []string { return slices.Clone(knownCapList()) }

var knownCapList = sync.OnceValue(func() []string {
	var names []string
	for _, c := range capability.ListKnown() {
		names = append(names, capName(c))
	}
	return names
})

func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

// currentCaps is this process's effective capability set. Like Docker, it
// falls back to every capability the kernel supports if that fails.
func currentCaps() []string {
	last, err := capability.LastCap()
	if err != nil {
		return knownCaps()
	}
	var names []string
	c, err := capability.NewPid2(0)
	if err == nil {
		err = c.Load()
	}
	for _, k := range capability.ListKnown() {
		if k <= last && (err != nil || c.Get(capability.EFFECTIVE, k)) {
			names = append(names, capName(k))
		}
	}
	return names
}

func kernelAtLeast(major, minor int) bool {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false
	}
	var maj, min int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func readUint(path string) uint64 {
	n, _ := strconv.ParseUint(readString(path), 10, 64)
	return n
}

func containsField(s, field string) bool {
	for _, f := range strings.Fields(s) {
		if f == field {
			return true
		}
	}
	return false
}

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11"),
// ignoring what it cannot read.
func parseCPUList(s string) []int {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				continue
			}
		}
		for i := a; i <= b; i++ {
			cpus = append(cpus, i)
		}
	}
	return cpus
}
