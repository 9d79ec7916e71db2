package proxy

import (
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
