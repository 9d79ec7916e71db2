package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// report prints, per path, the medians over the rounds: latency at the
// fixed rate and what it adds to the direct path (each round's
// difference, then the median), and per proxy its CPU (also per 1,000
// requests/s) and memory idle and at peak under load.
func report(w io.Writer, o options, targets []*target, results map[string][]runResult) {
	fmt.Fprintf(w, "\n%d rps, %d connections, %d-byte answers, %d rounds of %s (+%s warm-up); medians\n\n",
		o.rate, o.conns, o.size, o.runs, o.duration, o.warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trps\tp50 ms\tp90 ms\tp99 ms\t+p50\t+p90\t+p99\tlate\terrors\tvCPU (all proxies)\t")
	for _, t := range targets {
		rs := results[t.name]
		direct := results[baseline(t.name, results)]
		med := func(f func(i int, r runResult) float64) float64 {
			var v []float64
			for i, r := range rs {
				v = append(v, f(i, r))
			}
			return median(v)
		}
		added := func(f func(loadResult) float64) string {
			if t.name == baseline(t.name, results) {
				return "—"
			}
			return fmt.Sprintf("%+.3f", med(func(i int, r runResult) float64 { return f(r.Load) - f(direct[i].Load) }))
		}
		cpu := "—"
		if len(t.procs) > 0 {
			cpu = fmt.Sprintf("%.3f", med(func(_ int, r runResult) float64 {
				var s float64
				for _, p := range r.Procs {
					s += p.VCPU
				}
				return s
			}))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t\n", t.name,
			med(func(_ int, r runResult) float64 { return r.Load.RPS }),
			med(func(_ int, r runResult) float64 { return r.Load.P50 }),
			med(func(_ int, r runResult) float64 { return r.Load.P90 }),
			med(func(_ int, r runResult) float64 { return r.Load.P99 }),
			added(func(l loadResult) float64 { return l.P50 }),
			added(func(l loadResult) float64 { return l.P90 }),
			added(func(l loadResult) float64 { return l.P99 }),
			med(func(_ int, r runResult) float64 { return float64(r.Load.Late) }),
			med(func(_ int, r runResult) float64 { return float64(r.Load.Errors) }),
			cpu)
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy process\tvCPU\tvCPU per 1k rps\tRSS idle MB\t(anon)\tPss idle MB\tRSS load MB\t(anon)\tPss load MB\t")
	for _, t := range targets {
		rs := results[t.name]
		for i, p := range t.procs {
			med := func(f func(runResult) float64) float64 {
				var v []float64
				for _, r := range rs {
					v = append(v, f(r))
				}
				return median(v)
			}
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.name,
				med(func(r runResult) float64 { return r.Procs[i].VCPU }),
				med(func(r runResult) float64 { return r.Procs[i].VCPU / (r.Load.RPS / 1000) }),
				mb(p.idle.RSSKB), mb(p.idle.AnonKB), mb(p.idle.PssKB),
				med(func(r runResult) float64 { return mb(r.Procs[i].Peak.RSSKB) }),
				med(func(r runResult) float64 { return mb(r.Procs[i].Peak.AnonKB) }),
				med(func(r runResult) float64 { return mb(r.Procs[i].Peak.PssKB) }))
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w, strings.Repeat("-", 20))
}

// baseline is the direct path a path is compared with: between the two
// pods for the mesh paths, on loopback for the others.
func baseline(name string, results map[string][]runResult) string {
	switch name {
	case "mesh", "mesh-notelemetry", "sidecar", "mesh-direct":
		if results["mesh-direct"] != nil {
			return "mesh-direct"
		}
	}
	return "direct"
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
