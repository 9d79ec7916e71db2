// Command mesh is the mesh data-plane benchmark's harness (issue 9): it
// starts the benchmark's backend (bench/ingress/backend), Skiff proxies
// in the shape of a sidecar pair (bench/mesh/pairproxy, one process per
// proxy), a single Skiff proxy, nginx and haproxy, drives each path with
// the fixed-rate load generator (bench/ingress/loadgen) in interleaved
// rounds, reads every proxy's CPU time from /proc/PID/stat over the run
// and its memory (VmRSS, Pss) idle and under load, and prints medians.
//
// Run it through bench/mesh/run.sh, which builds the binaries and gives
// it a network namespace of its own; results go to docs/benchmarks.md by
// hand.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin, tmp         string
	runs             int
	rate, conns      int
	size             int
	duration, warmup time.Duration
	targets          []string
	jsonOut          string
	mtls             bool
	profile          string
	proxyEnv         []string
	ca               *testCA
}

func main() {
	var o options
	var targets string
	flag.StringVar(&o.bin, "bin", "", "directory with backend, loadgen and pairproxy")
	flag.StringVar(&o.tmp, "tmp", "", "scratch directory (configs, logs)")
	flag.IntVar(&o.runs, "runs", 3, "rounds; figures are medians over them")
	flag.IntVar(&o.rate, "rate", 1000, "requests per second")
	flag.IntVar(&o.conns, "conns", 16, "client connections")
	flag.IntVar(&o.size, "size", 1024, "response body bytes")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time per run")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured time before each run")
	flag.StringVar(&targets, "targets", "direct,pair,pair+telemetry,skiff,nginx,haproxy", "paths to measure (direct is always measured first)")
	flag.StringVar(&o.jsonOut, "json", "", "also write every run as JSON lines here")
	flag.StringVar(&o.profile, "cpuprofile-dir", "", "pairproxy processes write CPU profiles here")
	proxyEnv := flag.String("proxy-env", "", "extra environment for Skiff's proxies (\"GOMAXPROCS=1,GOGC=200\")")
	flag.BoolVar(&o.mtls, "mtls", true, "mesh paths use mesh mTLS (ISTIO_MUTUAL out, STRICT in)")
	flag.Parse()
	if o.bin == "" || o.tmp == "" {
		log.Fatal("-bin and -tmp are required")
	}
	o.targets = strings.Split(targets, ",")
	if *proxyEnv != "" {
		o.proxyEnv = strings.Split(*proxyEnv, ",")
	}
	var err error
	if o.ca, err = newTestCA(); err != nil {
		log.Fatal(err)
	}
	if !slices.Contains(o.targets, "direct") {
		o.targets = append([]string{"direct"}, o.targets...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// Addresses on loopback.
const (
	backendAddr = "127.0.0.1:18080"
	path        = "/bench/x"
)

// target is one path from the load generator to the backend.
type target struct {
	name  string
	addr  string  // where the load generator connects
	ns    string  // the network namespace it runs in (a pod's), or ""
	procs []*proc // the proxies on the path, client side first
}

func run(ctx context.Context, o options) error {
	var procs procSet
	defer procs.stopAll()
	if _, err := procs.start(ctx, o, "backend", filepath.Join(o.bin, "backend"), "-listen", backendAddr, "-size", fmt.Sprint(o.size)); err != nil {
		return err
	}
	var targets []*target
	for _, name := range o.targets {
		t, err := startTarget(ctx, o, &procs, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if err := waitHTTP(ctx, t.ns, "http://"+t.addr+path); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if o.mtls && len(t.procs) == 2 && t.ns != "" {
			if err := checkStrict(ctx, t); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	// Idle memory: every process is up and has served one request.
	time.Sleep(time.Second)
	for _, t := range targets {
		for _, p := range t.procs {
			p.idle = p.memory()
		}
	}
	var jsonl io.Writer = io.Discard
	if o.jsonOut != "" {
		f, err := os.Create(o.jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		jsonl = f
	}
	results := map[string][]runResult{}
	for round := range o.runs {
		for _, t := range targets {
			r, err := measure(ctx, o, t)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", t.name, round+1, err)
			}
			results[t.name] = append(results[t.name], r)
			_ = json.NewEncoder(jsonl).Encode(map[string]any{"round": round + 1, "target": t.name, "result": r})
			fmt.Fprintf(os.Stderr, "round %d %-16s rps %.0f p50 %.3f p90 %.3f p99 %.3f late %d errors %d\n",
				round+1, t.name, r.Load.RPS, r.Load.P50, r.Load.P90, r.Load.P99, r.Load.Late, r.Load.Errors)
		}
	}
	report(os.Stdout, o, targets, results)
	return nil
}

// loadResult is the load generator's JSON line.
type loadResult struct {
	RPS      float64 `json:"rps"`
	Requests int     `json:"requests"`
	Errors   int64   `json:"errors"`
	Late     int64   `json:"late"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

// procResult is one proxy process over one run.
type procResult struct {
	Name string  `json:"name"`
	VCPU float64 `json:"vcpu"` // CPU seconds per second of the run
	Peak memory  `json:"peak"` // largest VmRSS seen under load
	Idle memory  `json:"idle"` // before any load
}

type runResult struct {
	Load  loadResult   `json:"load"`
	Procs []procResult `json:"procs,omitempty"`
}

func measure(ctx context.Context, o options, t *target) (runResult, error) {
	var res runResult
	ticks0 := make([]int64, len(t.procs))
	for i, p := range t.procs {
		ticks0[i] = p.cpuTicks()
	}
	peaks := make([]memory, len(t.procs))
	args := []string{filepath.Join(o.bin, "loadgen"), "-url", "http://" + t.addr + path,
		"-rate", fmt.Sprint(o.rate), "-conns", fmt.Sprint(o.conns),
		"-duration", o.duration.String(), "-warmup", o.warmup.String(), "-label", t.name}
	if t.ns != "" {
		args = append([]string{"nsenter", "--net=" + t.ns}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if time.Since(start) < o.warmup {
				continue
			}
			for i, p := range t.procs {
				if m := p.memory(); m.RSSKB > peaks[i].RSSKB {
					peaks[i] = m
				}
			}
		}
	}
	elapsed := time.Since(start).Seconds()
	if err != nil {
		return res, fmt.Errorf("loadgen: %w", err)
	}
	if err := json.Unmarshal(out.Bytes(), &res.Load); err != nil {
		return res, fmt.Errorf("loadgen output %q: %w", out.String(), err)
	}
	for i, p := range t.procs {
		res.Procs = append(res.Procs, procResult{Name: p.name,
			VCPU: float64(p.cpuTicks()-ticks0[i]) / clockTicks / elapsed, Peak: peaks[i], Idle: p.idle})
	}
	return res, nil
}

// waitHTTP waits for url to answer 200 (from namespace ns when set).
func waitHTTP(ctx context.Context, ns, url string) error {
	var err error
	for range 200 {
		if ns != "" {
			err = command(ctx, ns, nil, "curl", "-fsS", "-o", "/dev/null", "--max-time", "2", url)
		} else {
			var res *http.Response
			if res, err = http.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("GET %s: %s", url, res.Status)
			}
		}
		if ns != "" && err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return err
}
