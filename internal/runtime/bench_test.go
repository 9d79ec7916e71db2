package runtime_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/runtime"
)

// BenchmarkStartTrue is the cost of a container's life as the engine sees
// it: Start of /bin/true (shim, libcontainer, init), Wait for its exit and
// Delete.
func BenchmarkStartTrue(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := "bench-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i)
		e.start(e.spec(id, "/bin/true"), id, runtime.StartRequest{})
		if st, err := e.rt.Wait(ctx, id); err != nil || st.Code != 0 {
			b.Fatalf("Wait = %+v, %v", st, err)
		}
		if err := e.rt.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShimIdleMemory reports the memory of idle shims (their
// containers sleep), from /proc/<pid>/smaps_rollup, in kB: RSS, PSS (the
// binary's pages are shared between shims, so PSS is nearer the cost of
// one more container) and the private anonymous part. "fresh" shims just
// started theirs; "used" ones answered 20 State and Stats calls and ran
// an exec first, as when an engine polls them.
func BenchmarkShimIdleMemory(b *testing.B) {
	for _, used := range []bool{false, true} {
		name := "fresh"
		if used {
			name = "used"
		}
		b.Run(name, func(b *testing.B) { benchShimMemory(b, used) })
	}
}

func benchShimMemory(b *testing.B, used bool) {
	const shims = 4
	e := newEnv(b)
	ctx := context.Background()
	var rss, pss, anon, threads float64
	n := 0
	for i := 0; b.Loop(); i++ {
		var ids []string
		for j := range shims {
			id := "mem-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
			e.start(e.spec(id, "sleep", "1000"), id, runtime.StartRequest{})
			ids = append(ids, id)
		}
		for _, id := range ids {
			if !used {
				break
			}
			for range 20 {
				if _, err := e.rt.State(ctx, id); err != nil {
					b.Fatal(err)
				}
				if _, err := e.rt.Stats(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := e.rt.Exec(ctx, id, runtime.ExecRequest{Process: specs.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}, Cwd: "/"}}); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(3 * time.Second) // idle
		for _, id := range ids {
			pids := shimPids(id)
			if len(pids) != 1 {
				b.Fatalf("shim pids %v", pids)
			}
			m := smapsRollup(b, pids[0])
			rss += m["Rss"]
			pss += m["Pss"]
			anon += m["Anonymous"]
			threads += m["Threads"]
			n++
		}
		for _, id := range ids {
			e.remove(id)
		}
	}
	b.ReportMetric(rss/float64(n), "rss-kB")
	b.ReportMetric(pss/float64(n), "pss-kB")
	b.ReportMetric(anon/float64(n), "anon-kB")
	b.ReportMetric(threads/float64(n), "threads")
}

func smapsRollup(tb testing.TB, pid int) map[string]float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			v, _ := strconv.ParseFloat(f[1], 64)
			m[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Threads:" {
				m["Threads"], _ = strconv.ParseFloat(f[1], 64)
			}
		}
	}
	return m
}
