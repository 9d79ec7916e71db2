package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's utime and stime
// (100 on every Linux architecture Skiff runs on).
const clockTicks = 100

// proc is a process the harness started; its figures include its
// children (nginx's workers).
type proc struct {
	name string
	cmd  *exec.Cmd
	idle memory
}

// memory is a process's (and its children's) resident memory in KiB:
// VmRSS counts shared pages in full, Pss shares them out.
type memory struct {
	RSSKB int64 `json:"rss_kb"`
	PssKB int64 `json:"pss_kb"`
	// AnonKB is the private part of VmRSS (heap, stacks); the rest is
	// the binary's pages, which processes of the same file share.
	AnonKB int64 `json:"anon_kb"`
}

type procSet []*proc

func (s *procSet) start(ctx context.Context, o options, name, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(o.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(o.proxyEnv) > 0 && slices.ContainsFunc(append([]string{bin}, args...), isSkiffProxy) {
		cmd.Env = append(os.Environ(), o.proxyEnv...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logf.Close()
	p := &proc{name: name, cmd: cmd}
	*s = append(*s, p)
	return p, nil
}

// isSkiffProxy says whether a program is one of Skiff's proxies (which
// get options.proxyEnv).
func isSkiffProxy(arg string) bool {
	b := filepath.Base(arg)
	return b == "pairproxy" || b == "skiff-proxy"
}

// stopAll ends every process group it started, gently first.
func (s *procSet) stopAll() {
	for _, p := range *s {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range *s {
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// pids is the process and its children.
func (p *proc) pids() []int {
	pid := p.cmd.Process.Pid
	pids := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}

// cpuTicks is utime+stime of the process and its children.
func (p *proc) cpuTicks() int64 {
	var total int64
	for _, pid := range p.pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces):
		// state is field 3, utime 14, stime 15.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}

func (p *proc) memory() memory {
	var m memory
	for _, pid := range p.pids() {
		m.RSSKB += statusKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		m.AnonKB += statusKB(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:")
		m.PssKB += statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	}
	return m
}

// statusKB reads a "Key:   123 kB" line.
func statusKB(file, key string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
