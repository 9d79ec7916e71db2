package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/network/proxy"
	"skiff.dev/skiff/internal/testenv"
)

// The benchmarks against an API server; the rule benchmarks, and the
// scale world (proxy.BenchService), are in bench_test.go.

// BenchmarkEndToEnd1000x10 runs the Proxy against an API server holding
// 1,000 Services × 10 endpoints: the time from Run to a written table
// (caches listed, everything programmed), the heap that adds, and the
// time from an EndpointSlice update at the API to the kernel holding it.
func BenchmarkEndToEnd1000x10(b *testing.B) {
	requireRoot(b)
	ns := proxy.ScratchNetNS(b)
	env := testenv.Start(b, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	created := time.Now()
	for i := range proxy.BenchServices {
		svc, sl := proxy.BenchService(i)
		if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("created %d Services and slices in %v", proxy.BenchServices, time.Since(created))

	before := proxy.HeapInUse()
	factory := informers.NewSharedInformerFactory(c, 0)
	p := proxy.New(c, factory, testenv.Logger(b), proxy.Options{NodeName: proxy.NodeName, NetNS: ns, PodCIDR: clusterCIDR})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	factory.Start(runCtx.Done())
	stop := testenv.Run(b, "proxy", p.Run)
	defer stop()
	<-p.Ready()
	programAll := time.Since(start)
	heap := proxy.HeapInUse() - before

	f, err := netns.Open(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	nc, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		b.Fatal(err)
	}
	table := &nftables.Table{Name: proxy.DefaultTable, Family: nftables.TableFamilyIPv4}
	svc, sl := proxy.BenchService(500)
	chain := &nftables.Chain{Name: proxy.ChainName(proxy.PrefixCluster, "default/"+svc.Name+"/tcp/http"), Table: table}
	// spreadSize reads the numgen modulus of the Service's chain.
	spreadSize := func() uint32 {
		rules, err := nc.GetRules(table, chain)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ng, ok := e.(*expr.Numgen); ok {
					return ng.Modulus
				}
			}
		}
		return 0
	}
	var lat, latAcked []time.Duration
	i := 0
	for b.Loop() {
		cur, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, sl.Name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		want := uint32(proxy.BenchEndpoints)
		if i%2 == 0 {
			cur.Endpoints = cur.Endpoints[:proxy.BenchEndpoints-1]
			want--
		} else {
			cur.Endpoints = append(cur.Endpoints, proxy.BenchEndpoint(500, proxy.BenchEndpoints-1))
		}
		i++
		t0 := time.Now()
		if _, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		for spreadSize() != want {
			if time.Since(t0) > 10*time.Second {
				b.Fatal("the change did not reach the kernel in 10s")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		latAcked = append(latAcked, time.Since(acked))
	}
	// (Reported after the loop: b.Loop's first call resets metrics.)
	b.ReportMetric(float64(programAll.Milliseconds()), "ms-to-program-all")
	b.ReportMetric(float64(heap)/(1<<20), "proxy+caches-MiB")
	slices.Sort(lat)
	slices.Sort(latAcked)
	// From the update request, and from the API's answer to it.
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "change-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "change-p99-ms")
	b.ReportMetric(float64(latAcked[len(latAcked)/2].Microseconds())/1000, "after-ack-p50-ms")
	b.ReportMetric(float64(latAcked[len(latAcked)*99/100].Microseconds())/1000, "after-ack-p99-ms")
}

// BenchmarkLatency compares small HTTP GETs (a new connection each) from
// one pod to another by pod IP and by ClusterIP, interleaved.
func BenchmarkLatency(b *testing.B) {
	n := newTestNode(b, 2)
	p1, p2 := n.pods[0], n.pods[1]
	create(b, n.env.Client, proxy.Service("backend", backendIP),
		slice("backend", "backend-1", "http", corev1.ProtocolTCP, httpPort, ready(p2)...))
	n.startProxy(proxy.Options{})
	testenv.Eventually(b, "the Service answers", func(context.Context) (bool, error) {
		_, err := get(p1.ns, backendIP+":80")
		return err == nil, err
	})
	paths := []struct{ name, addr string }{
		{"pod-ip", fmt.Sprintf("%s:%d", p2.ip, httpPort)},
		{"cluster-ip", backendIP + ":80"},
	}
	lat := make([][]time.Duration, len(paths))
	for range 200 { // warm up
		for _, p := range paths {
			if _, err := get(p1.ns, p.addr); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		for i, p := range paths {
			t0 := time.Now()
			if _, err := get(p1.ns, p.addr); err != nil {
				b.Fatal(err)
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
	}
	for i, p := range paths {
		slices.Sort(lat[i])
		b.ReportMetric(float64(lat[i][len(lat[i])/2].Microseconds()), p.name+"-p50-µs")
		b.ReportMetric(float64(lat[i][len(lat[i])*99/100].Microseconds()), p.name+"-p99-µs")
	}
}
