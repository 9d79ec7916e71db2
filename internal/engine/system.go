package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/version"
)

// Info answers `docker info`.
func (e *Engine) Info(ctx context.Context) (system.Info, error) {
	var running, stopped, total int
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		total++
		if c.rec.State.Running {
			running++
		} else {
			stopped++
		}
		c.mu.Unlock()
	}
	imgs, _ := e.opts.Images.List(ctx)
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	host, _ := os.Hostname()
	return system.Info{
		ID:                host,
		Containers:        total,
		ContainersRunning: running,
		ContainersStopped: stopped,
		Images:            len(imgs),
		Driver:            "overlayfs",
		DockerRootDir:     e.opts.DataDir,
		LoggingDriver:     "cri-file",
		CgroupDriver:      "cgroupfs",
		CgroupVersion:     cgroupVersion(),
		KernelVersion:     unix.ByteSliceToString(uts.Release[:]),
		OperatingSystem:   osName(),
		OSType:            "linux",
		Architecture:      unix.ByteSliceToString(uts.Machine[:]),
		NCPU:              goruntime.NumCPU(),
		MemTotal:          memTotal(),
		Name:              host,
		ServerVersion:     version.Version,
		DefaultRuntime:    "skiff",
		SystemTime:        e.now().Format(time.RFC3339Nano),
		MemoryLimit:       true,
		CPUShares:         true,
		CPUSet:            true,
		PidsLimit:         true,
		IPv4Forwarding:    true,
		SecurityOptions:   []string{"name=seccomp,profile=builtin", "name=no-new-privileges"},
	}, nil
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "linux"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// ContainerTop lists the container's processes like `ps -ef`.
func (e *Engine) ContainerTop(ctx context.Context, nameOrID, psArgs string) (container.TopResponse, error) {
	c, err := e.runningCtr(nameOrID)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := e.opts.Runtime.Processes(ctx, c.rec.ID)
	if err != nil {
		return container.TopResponse{}, err
	}
	out := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	for _, pid := range pids {
		row, ok := psRow(pid)
		if ok {
			out.Processes = append(out.Processes, row)
		}
	}
	return out, nil
}

func (e *Engine) runningCtr(nameOrID string) (*ctr, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.rec.State.Running
	c.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("container %s is not running: %w", c.rec.ID, errdefs.ErrConflict)
	}
	return c, nil
}

// psRow reads /proc/<pid> into ps -ef columns.
func psRow(pid int) ([]string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return nil, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return nil, false
	}
	ppid := f[1]
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	cpu := time.Duration(utime+stime) * time.Second / 100
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	if cmd == "" {
		cmd = "[" + s[strings.IndexByte(s, '(')+1:end] + "]"
	}
	uid := "?"
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					uid = fs[0]
				}
			}
		}
	}
	var fi unix.Stat_t
	started := "?"
	if unix.Stat(fmt.Sprintf("/proc/%d", pid), &fi) == nil {
		started = time.Unix(fi.Ctim.Sec, 0).Format("15:04")
	}
	h := int(cpu.Hours())
	m := int(cpu.Minutes()) % 60
	sec := int(cpu.Seconds()) % 60
	return []string{uid, strconv.Itoa(pid), ppid, "0", started, "?", fmt.Sprintf("%02d:%02d:%02d", h, m, sec), cmd}, true
}

// ContainerStats returns one resource usage sample.
func (e *Engine) ContainerStats(ctx context.Context, nameOrID string) (container.StatsResponse, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return container.StatsResponse{}, err
	}
	c.mu.Lock()
	id, name, running := c.rec.ID, c.rec.Name, c.rec.State.Running
	memLimit := c.rec.HostConfig.Memory
	c.mu.Unlock()
	out := container.StatsResponse{ID: id, Name: "/" + name, Read: e.now()}
	if !running {
		return out, nil
	}
	st, err := e.opts.Runtime.Stats(ctx, id)
	if err != nil {
		return out, err
	}
	out.CPUStats.CPUUsage.TotalUsage = st.CpuStats.CpuUsage.TotalUsage
	out.CPUStats.CPUUsage.UsageInKernelmode = st.CpuStats.CpuUsage.UsageInKernelmode
	out.CPUStats.CPUUsage.UsageInUsermode = st.CpuStats.CpuUsage.UsageInUsermode
	out.CPUStats.CPUUsage.PercpuUsage = st.CpuStats.CpuUsage.PercpuUsage
	out.CPUStats.OnlineCPUs = uint32(goruntime.NumCPU())
	out.CPUStats.SystemUsage = systemCPUUsage()
	out.MemoryStats.Usage = st.MemoryStats.Usage.Usage
	out.MemoryStats.MaxUsage = st.MemoryStats.Usage.MaxUsage
	out.MemoryStats.Stats = st.MemoryStats.Stats
	out.MemoryStats.Limit = st.MemoryStats.Usage.Limit
	if memLimit > 0 {
		out.MemoryStats.Limit = uint64(memLimit)
	} else if out.MemoryStats.Limit == 0 || out.MemoryStats.Limit > uint64(memTotal()) {
		out.MemoryStats.Limit = uint64(memTotal())
	}
	out.PidsStats.Current = st.PidsStats.Current
	out.PidsStats.Limit = st.PidsStats.Limit
	return out, nil
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from
// /proc/stat, as Docker reports it.
func systemCPUUsage() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks uint64
	for _, v := range f[1:min(len(f), 8)] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * uint64(time.Second/100)
}
