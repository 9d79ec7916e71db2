package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkPick is one endpoint choice plus what the traffic policy adds
// per try (breaker admission, outlier report), for a cluster without a
// policy and with each part set.
func BenchmarkPick(b *testing.B) {
	r := &http.Request{Header: http.Header{"X-User": {"jason"}}, URL: &url.URL{}, RemoteAddr: "10.1.2.3:4567"}
	for _, tc := range []struct {
		name string
		set  clusterSettings
	}{
		{"none", clusterSettings{}},
		{"breaker", clusterSettings{pool: ConnectionPool{MaxRequests: 1 << 20, MaxRetries: 3}}},
		{"outlier", clusterSettings{outlier: OutlierDetection{Consecutive5xx: 5}}},
		{"hash-header", clusterSettings{lb: LBConsistentHash, hash: hashPolicy{header: "X-User", ringSize: DefaultMinimumRingSize}}},
		{"hash-source-ip", clusterSettings{lb: LBConsistentHash, hash: hashPolicy{sourceIP: true, ringSize: DefaultMinimumRingSize}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			set := tc.set
			set.connectTimeout, set.maxIdle, set.idleTimeout = time.Second, 1, time.Minute
			if set.lb == "" {
				set.lb = LBRoundRobin
			}
			c := newCluster("c", set)
			var addrs []string
			for i := range 5 {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:80", i+1))
			}
			c.setEndpoints(eps(addrs...))
			b.Cleanup(c.close)
			b.ReportAllocs()
			for b.Loop() {
				var hk hashKey
				if c.hash != nil {
					hk, _ = c.hash.key(r)
				}
				ep := c.pickKey(nil, hk)
				if !c.cb.enter(false) {
					b.Fatal("overflow")
				}
				c.od.report(ep, 200)
				c.cb.leave(false)
			}
		})
	}
}
