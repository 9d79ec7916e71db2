package dns

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// benchIndex holds n ClusterIP Services.
func benchIndex(n int) *handler {
	ix := newIndex()
	for i := range n {
		svc := service(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250),
			port("http", corev1.ProtocolTCP, 80))
		ix.set(svc.Namespace+"/"+svc.Name, serviceRecords("cluster.local.", svc, nil))
	}
	return &handler{zone: "cluster.local.", ttl: 5, ix: ix}
}

// BenchmarkReply is the query path for a cluster name without the
// network: unpack, answer, pack.
func BenchmarkReply(b *testing.B) {
	h := benchIndex(1000)
	req := new(dns.Msg)
	req.SetQuestion("svc-500.ns-0.svc.cluster.local.", dns.TypeA)
	wire, _ := req.Pack()
	b.ReportAllocs()
	for b.Loop() {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		resp := h.reply(b.Context(), m, true)
		if _, err := resp.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate replaces one Service's records in an index of 10,000.
func BenchmarkUpdate(b *testing.B) {
	h := benchIndex(10000)
	svc := service("ns-0", "svc-0", "10.96.1.1", port("http", corev1.ProtocolTCP, 80))
	b.ReportAllocs()
	for b.Loop() {
		h.ix.set("ns-0/svc-0", serviceRecords("cluster.local.", svc, nil))
	}
}
