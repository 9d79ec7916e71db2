package podruntime

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkPodStartup measures this package's share of a pod's start:
// RunSandbox plus CreateAndStart of one busybox `sleep` container, one pod
// after the other; the pods stay up until the end. Run it with
// -benchtime=50x for the p50 over 50 pods:
//
//	go test -run '^$' -bench PodStartup -benchtime=50x ./internal/agent/podruntime
func BenchmarkPodStartup(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var total, sandbox, ctr []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		sb, err := e.m.RunSandbox(ctx, SandboxConfig{PodUID: newUID(), Namespace: "bench", Name: fmt.Sprintf("pod-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := e.m.CreateAndStart(ctx, ContainerConfig{PodUID: sb.PodUID, Name: "sleep", Image: "busybox", Command: []string{"sleep", "3600"}}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		total, sandbox, ctr = append(total, t2.Sub(t0)), append(sandbox, t1.Sub(t0)), append(ctr, t2.Sub(t1))
	}
	b.StopTimer()
	b.ReportMetric(percentile(total, 50), "p50-ms")
	b.ReportMetric(percentile(total, 90), "p90-ms")
	b.ReportMetric(percentile(sandbox, 50), "sandbox-p50-ms")
	b.ReportMetric(percentile(ctr, 50), "container-p50-ms")
}

// percentile is the p-th percentile of ds in milliseconds.
func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	return float64(s[max(i, 0)].Microseconds()) / 1000
}
