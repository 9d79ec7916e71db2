package agent_test

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkPodStartup measures creation → Ready of one pod at a time
// through the in-process API server and the agent, on the fake runtime
// (so it is the agent's and the API's share of pod startup, without
// namespaces and processes). It reports the p50 and p99.
func BenchmarkPodStartup(b *testing.B) {
	testLogLevel = slog.LevelWarn
	defer func() { testLogLevel = slog.LevelDebug }()
	env := newEnv(b)
	startNode(b, env)
	ctx := b.Context()
	w, err := env.Client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("bench-%d", i)
		i++
		start := time.Now()
		if _, err := env.Client.CoreV1().Pods("default").Create(ctx, pod(name), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				b.Fatalf("watch: %v", ev.Object)
			}
			p, ok := ev.Object.(*corev1.Pod)
			if ok && p.Name == name && ready(p) {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
