package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flagLog records each request's status and flags.
type flagLog struct {
	mu    sync.Mutex
	lines []string // "STATUS FLAGS UPSTREAM"
}

func (l *flagLog) Log(r *http.Request, info *RequestInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Join([]string{strconv.Itoa(info.Status), info.Flags.String(), info.UpstreamHost}, " "))
}

func (l *flagLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// connCounter is a backend that counts the connections it accepted and
// its requests.
type connCounter struct {
	srv         *httptest.Server
	conns, hits atomic.Int32
}

func newConnCounter(t *testing.T, delay time.Duration) *connCounter {
	c := &connCounter{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		time.Sleep(delay)
		_, _ = w.Write([]byte("ok"))
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *connCounter) addr() string { return strings.TrimPrefix(c.srv.URL, "http://") }

// concurrently sends n GETs at once and returns their statuses and
// bodies.
func concurrently(t *testing.T, n int, url string) (codes []int, bodies []string) {
	codes, bodies = make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			codes[i], _, bodies[i] = get(t, c, "GET", url, nil, "")
		})
	}
	wg.Wait()
	return codes, bodies
}

func TestCircuitBreaker(t *testing.T) {
	for _, tc := range []struct {
		name string
		pool ConnectionPool
		n    int
		// want: at least one 200 and, with overflow, at least one 503 UO.
		overflow bool
		// maxConns: the backend never serves more requests at once.
		maxConns int
	}{
		// The workshop's check: one connection, one waiting request, no
		// keep-alive; the third concurrent request overflows.
		{name: "workshop", pool: ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1, MaxRequestsPerConnection: 1}, n: 4, overflow: true, maxConns: 1},
		{name: "max requests", pool: ConnectionPool{MaxRequests: 1}, n: 3, overflow: true},
		// Without a pending limit requests wait for the one connection.
		{name: "queue without pending limit", pool: ConnectionPool{MaxConnections: 1}, n: 3, maxConns: 1},
		{name: "no limits", pool: ConnectionPool{}, n: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int32
			bk := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
				if n := inFlight.Add(1); n > peak.Load() {
					peak.Store(n)
				}
				time.Sleep(200 * time.Millisecond)
				inFlight.Add(-1)
			})
			log := &flagLog{}
			pool := tc.pool
			_, base := start(t, simple([]Route{{Clusters: to("c")}},
				Cluster{Name: "c", Pool: &pool, Endpoints: eps(bk.addr())}),
				func(o *Options) { o.AccessLog = log })
			codes, bodies := concurrently(t, tc.n, base+"/")
			ok, over := 0, 0
			for i, c := range codes {
				switch c {
				case 200:
					ok++
				case 503:
					over++
					if !strings.Contains(bodies[i], "reset reason: overflow") {
						t.Errorf("503 body %q", bodies[i])
					}
				default:
					t.Errorf("status %d: %q", c, bodies[i])
				}
			}
			if ok == 0 {
				t.Errorf("no request succeeded: %v", codes)
			}
			if tc.overflow && over == 0 {
				t.Errorf("no request overflowed: %v", codes)
			}
			if !tc.overflow && over > 0 {
				t.Errorf("%d requests overflowed: %v", over, codes)
			}
			uo := 0
			for _, l := range log.all() {
				if strings.HasPrefix(l, "503 UO") {
					uo++
				}
			}
			if uo != over {
				t.Errorf("access log has %d 503 UO, want %d: %q", uo, over, log.all())
			}
			if tc.maxConns > 0 && int(peak.Load()) > tc.maxConns {
				t.Errorf("backend served %d requests at once, connection limit %d", peak.Load(), tc.maxConns)
			}
		})
	}
}

func TestMaxRequestsPerConnection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		perConn int
		post    bool // through http.Transport rather than the h1 client
		want    int32
	}{
		{"keep-alive", 0, false, 1},
		{"one per connection", 1, false, 6},
		{"two per connection", 2, false, 3},
		{"one per connection, with a body", 1, true, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newConnCounter(t, 0)
			_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c",
				Pool: &ConnectionPool{MaxRequestsPerConnection: tc.perConn}, Endpoints: eps(bk.addr())}))
			for range 6 {
				method, body := "GET", ""
				if tc.post {
					method, body = "POST", "x"
				}
				if code, _, _ := get(t, nil, method, base+"/", nil, body); code != 200 {
					t.Fatalf("status %d", code)
				}
			}
			if got := bk.conns.Load(); got != tc.want {
				t.Errorf("backend accepted %d connections for 6 requests, want %d", got, tc.want)
			}
		})
	}
}

func TestOverflowIsNotRetried(t *testing.T) {
	bk := newConnCounter(t, 200*time.Millisecond)
	log := &flagLog{}
	_, base := start(t, simple([]Route{{Clusters: to("c"), Retry: &RetryPolicy{Attempts: 3, On: []RetryOn{Retry5xx}}}},
		Cluster{Name: "c", Pool: &ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}, Endpoints: eps(bk.addr())}),
		func(o *Options) { o.AccessLog = log })
	codes, _ := concurrently(t, 4, base+"/")
	over := 0
	for _, c := range codes {
		if c == 503 {
			over++
		}
	}
	if over == 0 {
		t.Fatalf("no overflow: %v", codes)
	}
	if hits := int(bk.hits.Load()); hits+over != 4 {
		t.Errorf("backend saw %d requests, %d overflowed: overflowed requests were retried?", hits, over)
	}
}

// With one connection allowed, a keep-alive connection idle in one pool
// (http.Transport's, after a request with a body) is given up for a
// request that needs a connection elsewhere (the h1 client's), and the
// other way round, rather than making it wait for the idle timeout.
func TestConnectionLimitEvictsIdle(t *testing.T) {
	a, b := newConnCounter(t, 0), newConnCounter(t, 0)
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", LB: LBRoundRobin,
		Pool: &ConnectionPool{MaxConnections: 1}, Endpoints: eps(a.addr(), b.addr())}))
	for i := range 6 {
		method, body := "GET", ""
		if i%3 == 1 {
			method, body = "POST", "x"
		}
		done := make(chan int, 1)
		go func() {
			var res *http.Response
			var err error
			if method == "POST" {
				res, err = http.Post(base+"/", "text/plain", strings.NewReader(body))
			} else {
				res, err = http.Get(base + "/")
			}
			code := 0
			if err == nil {
				code = res.StatusCode
				res.Body.Close()
			}
			done <- code
		}()
		select {
		case code := <-done:
			if code != 200 {
				t.Fatalf("request %d: status %d", i, code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d (%s) waits for a connection held idle", i, method)
		}
	}
}

func TestBreakerCounters(t *testing.T) {
	b := newBreaker(&ConnectionPool{MaxRequests: 2, MaxRetries: 1})
	if !b.enter(false) || !b.retryAllowed() || !b.enter(true) {
		t.Fatal("first try and first retry refused")
	}
	if b.retryAllowed() {
		t.Error("a second retry allowed while one is in flight (max 1)")
	}
	if b.enter(false) {
		t.Error("a third request admitted (max 2)")
	}
	b.leave(true)
	if !b.retryAllowed() || !b.enter(false) {
		t.Error("limits not freed on leave")
	}
	if st := b.status(); st.Requests != 2 || st.Retries != 0 {
		t.Errorf("status %+v", st)
	}
	if newBreaker(&ConnectionPool{IdleTimeout: time.Second, MaxRequestsPerConnection: 1}) != nil {
		t.Error("a breaker without limits")
	}
	var none *breaker
	if !none.enter(true) || !none.retryAllowed() || none.limitsConns() || none.status() != nil {
		t.Error("nil breaker limits")
	}
	none.leave(true)
}
