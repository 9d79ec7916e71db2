package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/testenv"
)

// Scale of the rule benchmarks: the 1,000 Services × 10
// endpoints.
const (
	benchServices  = 1000
	benchEndpoints = 10
)

// benchService is Service i of the scale world: ClusterIP 10.96.x.y, one
// port, NodePort, and its slice with 10 ready endpoints (plus one spare
// address for changes).
func benchService(i int) (*corev1.Service, *discoveryv1.EndpointSlice) {
	name := fmt.Sprintf("svc-%04d", i)
	cip := netip.AddrFrom4([4]byte{10, 96, byte(1 + i/250), byte(1 + i%250)})
	svc := service(name, cip.String(), func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = int32(30000 + i)
	})
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for j := range benchEndpoints {
		sl.Endpoints = append(sl.Endpoints, benchEndpoint(i, j))
	}
	return svc, sl
}

func benchEndpoint(i, j int) discoveryv1.Endpoint {
	ip := netip.AddrFrom4([4]byte{10, 245, byte(i / 20), byte(1 + (i%20)*12 + j)})
	return discoveryv1.Endpoint{Addresses: []string{ip.String()},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}, NodeName: ptr(nodeName)}
}

func benchWorld() objects {
	var o objects
	for i := range benchServices {
		svc, sl := benchService(i)
		o.services = append(o.services, svc)
		o.slices = append(o.slices, sl)
	}
	return o
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine a steadier measure than wall time.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since (u0, s0).
func reportCPU(b *testing.B, u0, s0 time.Duration, n int) {
	u, s := cpuTime()
	b.ReportMetric(float64((u-u0).Milliseconds())/float64(n), "user-ms/op")
	b.ReportMetric(float64((s-s0).Milliseconds())/float64(n), "sys-ms/op")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkTranslate1000x10 is the pure part of a full sync: translating
// every Service and planning the table. state-MiB is the heap the Proxy's
// state keeps once such a plan is in.
func BenchmarkTranslate1000x10(b *testing.B) {
	o := benchWorld()
	cfg := goldenConfig()
	var keep *plan
	u0, s0 := cpuTime()
	for b.Loop() {
		keep = full(cfg, o.translateAll(cfg), nil, nil, time.Now())
	}
	reportCPU(b, u0, s0, b.N)
	b.ReportMetric(float64(len(keep.next.chains)), "chains")
	st := newState(cfg)
	st.commit(keep)
	keep = nil
	with := heapInUse()
	runtime.KeepAlive(st)
	st = nil
	b.ReportMetric(float64(with-heapInUse())/(1<<20), "state-MiB")
}

// BenchmarkKernel1000x10 writes the whole table into a fresh namespace
// (the first sync), rewrites it over itself (a restart's sync), and
// times one endpoint change (one Service's batch) to the kernel.
func BenchmarkKernel1000x10(b *testing.B) {
	o := benchWorld()
	cfg := goldenConfig()
	services := o.translateAll(cfg)
	b.Run("first-sync", func(b *testing.B) {
		var cpuU, cpuS time.Duration
		n := 0
		for b.Loop() {
			b.StopTimer()
			ns := scratchNetNS(b)
			k := openKernel(b, ns, DefaultTable)
			b.StartTimer()
			u0, s0 := cpuTime()
			if err := k.apply(full(cfg, services, nil, nil, time.Now())); err != nil {
				b.Fatal(err)
			}
			u1, s1 := cpuTime()
			cpuU, cpuS, n = cpuU+u1-u0, cpuS+s1-s0, n+1
		}
		b.ReportMetric(float64(cpuU.Milliseconds())/float64(n), "user-ms/op")
		b.ReportMetric(float64(cpuS.Milliseconds())/float64(n), "sys-ms/op")
	})
	ns := scratchNetNS(b)
	k := openKernel(b, ns, DefaultTable)
	first := full(cfg, services, nil, nil, time.Now())
	if err := k.apply(first); err != nil {
		b.Fatal(err)
	}
	st := first.next
	b.Run("resync-over-existing", func(b *testing.B) {
		u0, s0 := cpuTime()
		defer func() { reportCPU(b, u0, s0, b.N) }()
		for b.Loop() {
			chains, sets, err := k.list()
			if err != nil {
				b.Fatal(err)
			}
			pl := full(cfg, services, chains, sets, time.Now())
			if err := k.apply(pl); err != nil {
				b.Fatal(err)
			}
			st = pl.next
		}
	})
	b.Run("one-endpoint-change", func(b *testing.B) {
		svc, sl := benchService(500)
		key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		spare := benchEndpoint(500, benchEndpoints)
		i := 0
		u0, s0 := cpuTime()
		defer func() { reportCPU(b, u0, s0, b.N) }()
		for b.Loop() {
			// Alternate: swap endpoint 0 for the spare and back.
			s := sl.DeepCopy()
			if i%2 == 0 {
				s.Endpoints[0] = spare
			}
			i++
			pl := st.update(map[types.NamespacedName]*serviceRules{key: translateService(svc, []*discoveryv1.EndpointSlice{s}, cfg)}, time.Now())
			if err := k.apply(pl); err != nil {
				b.Fatal(err)
			}
			st.commit(pl)
			if due := st.dueStale(time.Now().Add(time.Hour)); len(due) > 0 {
				b.StopTimer()
				if err := k.deleteChains(due); err != nil {
					b.Fatal(err)
				}
				for _, c := range due {
					delete(st.stale, c)
				}
				b.StartTimer()
			}
		}
	})
}

// BenchmarkEndToEnd1000x10 runs the Proxy against an API server holding
// 1,000 Services × 10 endpoints: the time from Run to a written table
// (caches listed, everything programmed), the heap that adds, and the
// time from an EndpointSlice update at the API to the kernel holding it.
func BenchmarkEndToEnd1000x10(b *testing.B) {
	requireRoot(b)
	ns := scratchNetNS(b)
	env := testenv.Start(b, testenv.WithoutControllers)
	c := env.Client
	ctx := context.Background()
	created := time.Now()
	for i := range benchServices {
		svc, sl := benchService(i)
		if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("created %d Services and slices in %v", benchServices, time.Since(created))

	before := heapInUse()
	factory := informers.NewSharedInformerFactory(c, 0)
	p := New(c, factory, testenv.Logger(b), Options{NodeName: nodeName, NetNS: ns, PodCIDR: clusterCIDR})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	factory.Start(runCtx.Done())
	stop := testenv.Run(b, "proxy", p.Run)
	defer stop()
	<-p.Ready()
	programAll := time.Since(start)
	heap := heapInUse() - before

	f, err := netns.Open(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	nc, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		b.Fatal(err)
	}
	table := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyIPv4}
	svc, sl := benchService(500)
	chain := &nftables.Chain{Name: chainName(prefixCluster, "default/"+svc.Name+"/tcp/http"), Table: table}
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
		want := uint32(benchEndpoints)
		if i%2 == 0 {
			cur.Endpoints = cur.Endpoints[:benchEndpoints-1]
			want--
		} else {
			cur.Endpoints = append(cur.Endpoints, benchEndpoint(500, benchEndpoints-1))
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
	create(b, n.env.Client, service("backend", backendIP),
		slice("backend", "backend-1", "http", corev1.ProtocolTCP, httpPort, ready(p2)...))
	n.startProxy(Options{})
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
