package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func ringEndpoints(n int) []*endpoint {
	var out []*endpoint
	for i := range n {
		out = append(out, &endpoint{addr: fmt.Sprintf("10.0.0.%d:8080", i+1)})
	}
	return out
}

func ringOwners(r *ring, keys int) []string {
	out := make([]string, keys)
	for k := range keys {
		out[k] = r.pick(hashString(strconv.Itoa(k)), nil, func(*endpoint) bool { return true }).addr
	}
	return out
}

// An endpoint joining takes about its share of the keys, all from others;
// one leaving gives away only its own.
func TestRingMovesFewKeys(t *testing.T) {
	const keys = 20000
	five := ringEndpoints(5)
	six := append(ringEndpoints(5), &endpoint{addr: "10.0.0.99:8080"})
	before := ringOwners(newRing(five, DefaultMinimumRingSize), keys)
	after := ringOwners(newRing(six, DefaultMinimumRingSize), keys)
	moved := 0
	share := map[string]int{}
	for k := range keys {
		share[before[k]]++
		if before[k] != after[k] {
			moved++
			if after[k] != "10.0.0.99:8080" {
				t.Fatalf("key %d moved between old endpoints (%s → %s)", k, before[k], after[k])
			}
		}
	}
	if f := float64(moved) / keys; f > 0.25 || f < 0.08 {
		t.Errorf("%.1f%% of keys moved to the new endpoint, want about 1/6", 100*f)
	}
	for addr, n := range share {
		if f := float64(n) / keys; f < 0.12 || f > 0.28 {
			t.Errorf("%s owns %.1f%% of keys, want about 20%%", addr, 100*f)
		}
	}
	// Removing an endpoint moves only its keys.
	four := ringEndpoints(5)[1:]
	after = ringOwners(newRing(four, DefaultMinimumRingSize), keys)
	for k := range keys {
		if before[k] != "10.0.0.1:8080" && before[k] != after[k] {
			t.Fatalf("key %d moved from %s though it stayed", k, before[k])
		}
	}
}

func TestRingSkipsUnusableAndTried(t *testing.T) {
	eps := ringEndpoints(3)
	r := newRing(eps, 64)
	h := hashString("k")
	first := r.pick(h, nil, func(*endpoint) bool { return true })
	second := r.pick(h, []*endpoint{first}, func(*endpoint) bool { return true })
	if second == first || second == nil {
		t.Fatalf("retry got %v after %v", second, first)
	}
	if e := r.pick(h, nil, func(e *endpoint) bool { return e != first }); e != second {
		t.Errorf("with the owner unusable got %v, want the next on the ring %v", e, second)
	}
	if e := r.pick(h, eps, func(*endpoint) bool { return true }); e != first {
		t.Errorf("all tried: got %v, want the owner %v", e, first)
	}
	if e := r.pick(h, nil, func(*endpoint) bool { return false }); e != nil {
		t.Errorf("none usable: got %v", e)
	}
}

func TestConsistentHashPolicies(t *testing.T) {
	var addrs []string
	for i := range 4 {
		addrs = append(addrs, newBackend(t, fmt.Sprintf("b%d", i), nil).addr())
	}
	for _, tc := range []struct {
		name string
		hash HashPolicy
		// req makes the request for key k.
		req func(k int) (path string, hdr map[string]string)
	}{
		{"header", HashPolicy{Header: "x-user"}, func(k int) (string, map[string]string) {
			return "/", map[string]string{"X-User": "user" + strconv.Itoa(k)}
		}},
		{"cookie", HashPolicy{Cookie: &HashCookie{Name: "session"}}, func(k int) (string, map[string]string) {
			return "/", map[string]string{"Cookie": "session=s" + strconv.Itoa(k)}
		}},
		{"query", HashPolicy{Query: "u"}, func(k int) (string, map[string]string) {
			return "/?a=1&u=" + strconv.Itoa(k), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := start(t, simple([]Route{{Clusters: to("c")}},
				Cluster{Name: "c", LB: LBConsistentHash, Hash: &tc.hash, Endpoints: eps(addrs...)}))
			distinct := map[string]bool{}
			for k := range 12 {
				path, hdr := tc.req(k)
				_, _, want := get(t, nil, "GET", base+path, hdr, "")
				for range 4 {
					if _, _, got := get(t, nil, "GET", base+path, hdr, ""); got != want {
						t.Fatalf("key %d went to %s, then %s", k, want, got)
					}
				}
				distinct[want] = true
			}
			if len(distinct) < 2 {
				t.Errorf("12 keys all on %v", distinct)
			}
		})
	}
	t.Run("source ip", func(t *testing.T) {
		_, base := start(t, simple([]Route{{Clusters: to("c")}},
			Cluster{Name: "c", Hash: &HashPolicy{SourceIP: true}, Endpoints: eps(addrs...)}))
		_, _, want := get(t, nil, "GET", base+"/", nil, "")
		for range 8 {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // new source ports
			if _, _, got := get(t, c, "GET", base+"/", nil, ""); got != want {
				t.Fatalf("same client went to %s, then %s", want, got)
			}
		}
	})
}

func TestHashCookieIsSetWithTTL(t *testing.T) {
	var addrs []string
	for i := range 4 {
		addrs = append(addrs, newBackend(t, fmt.Sprintf("b%d", i), nil).addr())
	}
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c",
		Hash: &HashPolicy{Cookie: &HashCookie{Name: "sticky", Path: "/", TTL: time.Hour}}, Endpoints: eps(addrs...)}))
	_, hdr, first := get(t, nil, "GET", base+"/", nil, "")
	sc := hdr.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "sticky=") || !strings.Contains(sc, "Max-Age=3600") || !strings.Contains(sc, "Path=/") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	cookie := strings.SplitN(sc, ";", 2)[0]
	for range 10 {
		_, hdr, got := get(t, nil, "GET", base+"/", map[string]string{"Cookie": cookie}, "")
		if got != first {
			t.Fatalf("with the cookie went to %s, first to %s", got, first)
		}
		if hdr.Get("Set-Cookie") != "" {
			t.Fatalf("cookie set again: %q", hdr.Get("Set-Cookie"))
		}
	}
}

func TestConsistentHashSkipsEjected(t *testing.T) {
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	good := newBackend(t, "good", nil)
	other := newBackend(t, "other", nil)
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c",
		Hash:      &HashPolicy{Header: "x-user"},
		Outlier:   &OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 100, Interval: time.Hour},
		Endpoints: eps(bad.addr(), good.addr(), other.addr())}))
	for k := range 30 {
		hdr := map[string]string{"X-User": strconv.Itoa(k)}
		get(t, nil, "GET", base+"/", hdr, "") // may eject bad
		if code, _, body := get(t, nil, "GET", base+"/", hdr, ""); code != 200 {
			t.Fatalf("key %d: %d %q after ejection", k, code, body)
		}
	}
}
