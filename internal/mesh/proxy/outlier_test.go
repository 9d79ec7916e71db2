package proxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// outlierCluster is a cluster of n endpoints (nothing listens: only picks
// and reports are exercised) with detector od and a clock the test moves.
func outlierCluster(t *testing.T, n int, od OutlierDetection) (*cluster, *time.Time) {
	t.Helper()
	if od.Interval == 0 {
		od.Interval = time.Hour // the test sweeps by hand
	}
	c := newCluster("c", clusterSettings{lb: LBRoundRobin, connectTimeout: time.Second, maxIdle: 1,
		idleTimeout: time.Minute, outlier: od})
	var addrs []string
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", 1001+i))
	}
	c.setEndpoints(eps(addrs...))
	now := time.Unix(1000, 0)
	c.od.now = func() time.Time { return now }
	t.Cleanup(c.close)
	return c, &now
}

func picks(c *cluster, n int) map[string]int {
	got := map[string]int{}
	for range n {
		if e := c.pick(nil); e != nil {
			got[e.addr]++
		} else {
			got["none"]++
		}
	}
	return got
}

func TestOutlierEjection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		od      OutlierDetection
		reports []int // charged to endpoint 0, in order
		ejected bool
	}{
		{"5xx in a row", 3, OutlierDetection{Consecutive5xx: 3, MaxEjectionPercent: 100}, []int{500, 503, 500}, true},
		{"a success resets", 3, OutlierDetection{Consecutive5xx: 3, MaxEjectionPercent: 100}, []int{500, 500, 200, 500, 500}, false},
		{"gateway errors", 3, OutlierDetection{ConsecutiveGatewayErrors: 2, MaxEjectionPercent: 100}, []int{502, outlierCodeLocalFailure}, true},
		{"500 breaks a gateway run", 3, OutlierDetection{ConsecutiveGatewayErrors: 2, MaxEjectionPercent: 100}, []int{502, 500, 504}, false},
		{"timeouts are gateway errors", 3, OutlierDetection{ConsecutiveGatewayErrors: 2, MaxEjectionPercent: 100}, []int{outlierCodeLocalTimeout, 504}, true},
		{"overflow is not the endpoint's fault", 3, OutlierDetection{Consecutive5xx: 2, MaxEjectionPercent: 100}, []int{500, outlierCodeOverflow, outlierCodeNone}, false},
		// Envoy: eject only while ejected/total, this one included, stays
		// within the maximum — 1 of 3 is 33% > 10% (the default).
		{"default max percent, 3 endpoints", 3, OutlierDetection{Consecutive5xx: 1}, []int{500}, false},
		{"default max percent, 10 endpoints", 10, OutlierDetection{Consecutive5xx: 1}, []int{500}, true},
		{"max percent 50, 2 endpoints", 2, OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 50}, []int{500}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := outlierCluster(t, tc.n, tc.od)
			ep := c.endpoints()[0]
			for _, code := range tc.reports {
				c.od.report(ep, code)
			}
			if got := ep.outlier.ejected.Load(); got != tc.ejected {
				t.Fatalf("ejected = %t, want %t", got, tc.ejected)
			}
			got := picks(c, 100)
			if tc.ejected && got[ep.addr] > 0 {
				t.Errorf("ejected endpoint picked %d times: %v", got[ep.addr], got)
			}
			if !tc.ejected && got[ep.addr] == 0 {
				t.Errorf("healthy endpoint never picked: %v", got)
			}
		})
	}
}

func TestOutlierMaxPercentCountsEjected(t *testing.T) {
	c, _ := outlierCluster(t, 4, OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 50})
	all := c.endpoints()
	for _, e := range all {
		c.od.report(e, 500)
	}
	n := 0
	for _, e := range all {
		if e.outlier.ejected.Load() {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d of 4 endpoints ejected with max 50%%", n)
	}
}

func TestOutlierReturnAndMultiplier(t *testing.T) {
	base := 30 * time.Second
	c, now := outlierCluster(t, 2, OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 100, BaseEjectionTime: base})
	ep := c.endpoints()[0]
	step := func(d time.Duration) { *now = now.Add(d); c.od.sweep() }

	c.od.report(ep, 500)
	step(base - time.Second)
	if !ep.outlier.ejected.Load() {
		t.Fatal("returned before the base ejection time")
	}
	step(time.Second)
	if ep.outlier.ejected.Load() {
		t.Fatal("not returned after the base ejection time")
	}
	// Ejected again at once: twice as long.
	c.od.report(ep, 500)
	st := c.status()
	if !st.Endpoints[0].Ejected || st.Endpoints[0].Ejections != 2 || !st.Endpoints[0].EjectedUntil.Equal(now.Add(2*base)) {
		t.Fatalf("status %+v", st.Endpoints[0])
	}
	step(base)
	if !ep.outlier.ejected.Load() {
		t.Fatal("second ejection not twice as long")
	}
	step(base)
	if ep.outlier.ejected.Load() {
		t.Fatal("not returned after twice the base time")
	}
	// Each sweep it stays in forgives one ejection.
	step(time.Second)
	step(time.Second)
	if st := c.status(); st.Endpoints[0].Ejections != 0 {
		t.Errorf("ejections %d after two quiet sweeps, want 0", st.Endpoints[0].Ejections)
	}
}

func TestOutlierPanicUsesAll(t *testing.T) {
	for _, tc := range []struct {
		name      string
		minHealth int
		wantNone  bool // no endpoint left to pick
	}{
		{"no panic threshold: nothing healthy", 0, true},
		{"panic: all used", 50, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := outlierCluster(t, 3, OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 100, MinHealthPercent: tc.minHealth})
			for _, e := range c.endpoints() {
				c.od.report(e, 500)
			}
			got := picks(c, 30)
			if tc.wantNone && got["none"] != 30 {
				t.Errorf("picks %v, want none", got)
			}
			if !tc.wantNone && (got["none"] > 0 || len(got) != 3) {
				t.Errorf("picks %v, want all three in panic", got)
			}
			if st := c.status(); st.Panic == tc.wantNone {
				t.Errorf("status panic = %t", st.Panic)
			}
		})
	}
}

func TestOutlierEndToEnd(t *testing.T) {
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	good := newBackend(t, "good", nil)
	endpoints := eps(bad.addr(), good.addr())
	endpoints[0].Labels = map[string]string{"version": "v1"}
	p, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c",
		Outlier:   &OutlierDetection{ConsecutiveGatewayErrors: 2, MaxEjectionPercent: 100, Interval: time.Hour},
		Endpoints: endpoints}))
	for range 4 {
		get(t, nil, "GET", base+"/", nil, "")
	}
	st, err := p.ClusterStatus("c")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Endpoints[0].Ejected || st.Endpoints[1].Ejected || st.Endpoints[0].Labels["version"] != "v1" {
		t.Fatalf("status %+v", st)
	}
	for range 10 {
		if code, _, body := get(t, nil, "GET", base+"/", nil, ""); code != 200 || body != "good" {
			t.Fatalf("after ejection: %d %q", code, body)
		}
	}
	// The endpoint set changes: the ejection of one that stays is kept.
	if err := p.SetEndpoints("c", eps(bad.addr(), good.addr(), closedAddr(t))); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.ClusterStatus("c"); !st.Endpoints[0].Ejected {
		t.Errorf("ejection lost on SetEndpoints: %+v", st)
	}
	if _, err := p.ClusterStatus("nope"); err == nil {
		t.Error("status of a missing cluster")
	}
}
