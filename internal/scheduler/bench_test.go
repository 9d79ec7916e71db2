package scheduler_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/scheduler"
	"skiff.dev/skiff/internal/testenv"
)

// The benchmarks run the scheduler against the in-process API server with
// 100 simulated nodes (plain Node objects) and report bound pods per
// second:
//
//	go test ./internal/scheduler -run '^$' -bench . -benchtime 3x
const (
	benchNodes = 100
	benchPods  = 1000
)

func benchCluster(b *testing.B) kubernetes.Interface {
	env := testenv.Start(b, testenv.WithoutControllers)
	var wg sync.WaitGroup
	for i := range benchNodes {
		wg.Go(func() {
			createNode(b, env.Client, nodeSpec{name: fmt.Sprintf("node-%03d", i), cpu: "32", memory: "128Gi",
				labels: map[string]string{corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%3)}})
		})
	}
	wg.Wait()
	return env.Client
}

// createPods creates n pods of one ReplicaSet labelled run=<run>, 32 at a
// time.
func createPods(b *testing.B, c kubernetes.Interface, run string, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				p := newPod("default", fmt.Sprintf("%s-%04d", run, i), ownedBy("rs-"+run))
				p.Labels["run"] = run
				p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
				if _, err := c.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// boundWatcher counts the pods of a run that have a node.
func boundWatcher(b *testing.B, c kubernetes.Interface, run string, want int) (done <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "run=" + run
	}))
	ch := make(chan struct{})
	var mu sync.Mutex
	bound := map[string]bool{}
	seen := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !bound[p.Name] {
			bound[p.Name] = true
			if len(bound) == want {
				close(ch)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: seen, UpdateFunc: func(_, obj any) { seen(obj) },
	}); err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return ch, func() { cancel(); factory.Shutdown() }
}

func waitAll(b *testing.B, done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("pods not all bound after 5 minutes")
	}
}

// BenchmarkBindBacklog: 1,000 pods wait, then the scheduler starts; the
// time until all are bound gives the scheduler's throughput.
func BenchmarkBindBacklog(b *testing.B) {
	c := benchCluster(b)
	recorder, stopEvents := newRecorder(c)
	defer settle(stopEvents)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		run := fmt.Sprintf("backlog%d", i)
		b.StopTimer()
		createPods(b, c, run, benchPods)
		done, stopWatch := boundWatcher(b, c, run, benchPods)
		b.StartTimer()
		start := time.Now()
		stop := startSchedulerWith(b, c, recorder, scheduler.Options{})
		waitAll(b, done)
		total += time.Since(start)
		b.StopTimer()
		stop()
		stopWatch()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchPods*b.N)/total.Seconds(), "pods/s")
}

// BenchmarkCreateAndBind: the scheduler runs while 1,000 pods are created
// at once (32 clients); the time from the first create to the last
// binding, end to end.
func BenchmarkCreateAndBind(b *testing.B) {
	c := benchCluster(b)
	stop := startScheduler(b, c, scheduler.Options{})
	defer settle(stop)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		run := fmt.Sprintf("burst%d", i)
		b.StopTimer()
		done, stopWatch := boundWatcher(b, c, run, benchPods)
		b.StartTimer()
		start := time.Now()
		createPods(b, c, run, benchPods)
		waitAll(b, done)
		total += time.Since(start)
		b.StopTimer()
		stopWatch()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchPods*b.N)/total.Seconds(), "pods/s")
}

// settle lets the last events reach the server before stop.
func settle(stop func()) {
	time.Sleep(2 * time.Second)
	stop()
}
