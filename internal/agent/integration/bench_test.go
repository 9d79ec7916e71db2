package integration_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// BenchmarkRealPodStartup measures creation → Ready of one busybox
// `sleep` pod at a time on the real runtime, through the in-process API
// server: the whole node's share of pod startup (sandbox, veth, overlay,
// shim, status). It reports the p50 and p99.
func BenchmarkRealPodStartup(b *testing.B) {
	runtimetest.SkipUnlessRoot(b)
	if !runtimetest.InNetNS() {
		b.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(b)
	dir := b.TempDir()
	importBusybox(b, dir+"/data")
	env := testenv.Start(b, testenv.WithoutControllers)
	c := env.Client
	startNode(b, env, dir)
	b.Cleanup(func() { removeAllPods(b, c, dir) })
	ctx := b.Context()
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("bench-%d", i)
		i++
		p := simplePod(name, corev1.RestartPolicyAlways, "exec sleep 3600")
		start := time.Now()
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				b.Fatalf("watch: %v", ev.Object)
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && p.Name == name && isReady(p) {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
