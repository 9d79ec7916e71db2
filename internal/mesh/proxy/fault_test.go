package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

// always and never are Options.Random stand-ins: every draw hits, or
// none does.
func always(o *Options) { o.Random = func(uint32) uint32 { return 0 } }
func never(o *Options)  { o.Random = func(n uint32) uint32 { return n - 1 } }

func TestFaultAbort(t *testing.T) {
	grpcReq := map[string]string{"Content-Type": "application/grpc"}
	for _, tc := range []struct {
		name       string
		abort      FaultAbort
		random     func(*Options)
		hdr        map[string]string
		wantCode   int
		wantGRPC   string
		wantBody   string
		wantFlag   string
		wantUpHits int
	}{
		{name: "http status", abort: FaultAbort{Status: 503, Percent: 100}, random: always,
			wantCode: 503, wantBody: "fault filter abort", wantFlag: " FI "},
		{name: "not drawn", abort: FaultAbort{Status: 503, Percent: 50}, random: never,
			wantCode: 200, wantBody: "up", wantFlag: " - ", wantUpHits: 1},
		{name: "zero percent never aborts", abort: FaultAbort{Status: 503, Percent: 0}, random: always,
			wantCode: 200, wantBody: "up", wantFlag: " - ", wantUpHits: 1},
		{name: "grpc status for a grpc request", abort: FaultAbort{GRPCStatus: "UNAVAILABLE", Percent: 100}, random: always,
			hdr: grpcReq, wantCode: 200, wantGRPC: "14", wantFlag: " FI "},
		{name: "grpc status by number", abort: FaultAbort{GRPCStatus: "7", Percent: 100}, random: always,
			hdr: map[string]string{"Content-Type": "application/grpc+proto"}, wantCode: 200, wantGRPC: "7", wantFlag: " FI "},
		{name: "http status mapped for a grpc request", abort: FaultAbort{Status: 503, Percent: 100}, random: always,
			hdr: grpcReq, wantCode: 200, wantGRPC: "14", wantFlag: " FI "},
		{name: "grpc status only, plain request", abort: FaultAbort{GRPCStatus: "INTERNAL", Percent: 100}, random: always,
			wantCode: 200, wantBody: "fault filter abort", wantFlag: " FI "},
		{name: "grpc-web is not grpc", abort: FaultAbort{Status: 418, Percent: 100}, random: always,
			hdr: map[string]string{"Content-Type": "application/grpc-web"}, wantCode: 418, wantBody: "fault filter abort", wantFlag: " FI "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newBackend(t, "up", nil)
			log := &logBuffer{}
			abort := tc.abort
			_, base := start(t, simple([]Route{{Name: "r", Clusters: to("c"), Fault: &Fault{Abort: &abort}}},
				Cluster{Name: "c", Endpoints: eps(up.addr())}),
				tc.random, func(o *Options) { o.AccessLog = NewTextAccessLog(log) })
			code, h, body := get(t, nil, "POST", base+"/x", tc.hdr, "")
			if code != tc.wantCode || body != tc.wantBody || h.Get("Grpc-Status") != tc.wantGRPC {
				t.Errorf("got %d %q grpc-status %q, want %d %q %q", code, body, h.Get("Grpc-Status"), tc.wantCode, tc.wantBody, tc.wantGRPC)
			}
			if _, hits := up.seen(); hits != tc.wantUpHits {
				t.Errorf("upstream saw %d requests, want %d", hits, tc.wantUpHits)
			}
			if !strings.Contains(log.String(), tc.wantFlag) {
				t.Errorf("access log %q lacks flags %q", log.String(), tc.wantFlag)
			}
		})
	}
}

func TestFaultDelay(t *testing.T) {
	up := newBackend(t, "up", nil)
	log := &logBuffer{}
	const delay = 150 * time.Millisecond
	// The route's timeout is shorter than the delay: it starts after it,
	// as Envoy's router runs after the fault filter.
	routes := []Route{
		{Name: "slow", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/slow"}}, Clusters: to("c"), Timeout: 100 * time.Millisecond,
			Fault: &Fault{Delay: &FaultDelay{Fixed: delay, Percent: 100}}},
		{Name: "both", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/both"}}, Clusters: to("c"),
			Fault: &Fault{Delay: &FaultDelay{Fixed: delay, Percent: 100}, Abort: &FaultAbort{Status: 500, Percent: 100}}},
		{Name: "hang", Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/hang"}}, Clusters: to("c"),
			Fault: &Fault{Delay: &FaultDelay{Fixed: time.Hour, Percent: 100}}},
	}
	_, base := start(t, simple(routes, Cluster{Name: "c", Endpoints: eps(up.addr())}),
		always, func(o *Options) { o.AccessLog = NewTextAccessLog(log) })

	began := time.Now()
	code, _, body := get(t, nil, "GET", base+"/slow", nil, "")
	if code != 200 || body != "up" {
		t.Errorf("/slow: %d %q, want 200 from upstream", code, body)
	}
	if took := time.Since(began); took < delay {
		t.Errorf("/slow answered after %v, before the %v delay", took, delay)
	}
	code, _, body = get(t, nil, "GET", base+"/both", nil, "")
	if code != 500 || body != "fault filter abort" {
		t.Errorf("/both: %d %q, want the abort after the delay", code, body)
	}

	// A client that leaves during the delay ends it; nothing is forwarded.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/hang", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("/hang: %v, want the client's deadline", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "/hang") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := log.String()
	for _, want := range []string{`"GET /slow HTTP/1.1" 200 DI `, `"GET /both HTTP/1.1" 500 DI,FI `, `"GET /hang HTTP/1.1" 499 DC,DI `} {
		if !strings.Contains(lines, want) {
			t.Errorf("access log lacks %q:\n%s", want, lines)
		}
	}
	if _, hits := up.seen(); hits != 1 {
		t.Errorf("upstream saw %d requests, want 1 (/slow)", hits)
	}
}

func TestDrawShares(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		want    int // hits among draws 0, 1000, ..., 999000
	}{
		{0, 0}, {100, 1000}, {50, 500}, {12.5, 125}, {0.1, 1}, {0.0001, 1}, {99.95, 1000},
	} {
		var next atomic.Uint32
		p := New(Options{Random: func(n uint32) uint32 { return (next.Add(1000) - 1000) % n }})
		hits := 0
		for range 1000 {
			if p.draw(share(tc.percent)) {
				hits++
			}
		}
		if hits != tc.want {
			t.Errorf("%v%%: %d of 1000 draws hit, want %d", tc.percent, hits, tc.want)
		}
	}
}

func TestRouteExtrasValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		want  string
	}{
		{"fault empty", Route{Fault: &Fault{}}, `routes[0](r).fault: a delay or an abort required`},
		{"delay zero", Route{Fault: &Fault{Delay: &FaultDelay{Percent: 10}}}, `fault.delay.fixed: must be positive`},
		{"delay percent", Route{Fault: &Fault{Delay: &FaultDelay{Fixed: time.Second, Percent: 101}}}, `fault.delay.percent: 101`},
		{"abort no status", Route{Fault: &Fault{Abort: &FaultAbort{Percent: 1}}}, `fault.abort: status or grpcStatus required`},
		{"abort bad status", Route{Fault: &Fault{Abort: &FaultAbort{Status: 99, Percent: 1}}}, `fault.abort.status: 99`},
		{"abort bad grpc", Route{Fault: &Fault{Abort: &FaultAbort{GRPCStatus: "NOPE", Percent: 1}}}, `fault.abort.grpcStatus: unknown status "NOPE"`},
		{"abort grpc out of range", Route{Fault: &Fault{Abort: &FaultAbort{GRPCStatus: "17", Percent: 1}}}, `unknown status "17"`},
		{"abort negative percent", Route{Fault: &Fault{Abort: &FaultAbort{Status: 500, Percent: -1}}}, `fault.abort.percent: -1`},
		{"mirror unknown cluster", Route{Mirrors: []Mirror{{Cluster: "nope", Percent: 100}}}, `mirrors[0].cluster: no cluster "nope"`},
		{"mirror percent", Route{Mirrors: []Mirror{{Cluster: "c", Percent: 200}}}, `mirrors[0].percent: 200`},
		{"cors origin kind", Route{CORS: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: "glob", Value: "*"}}}}, `cors.allowOrigins[0].kind: unknown "glob"`},
		{"cors origin regex", Route{CORS: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringRegex, Value: "("}}}}, `cors.allowOrigins[0].value`},
		{"cors header", Route{CORS: &CORSPolicy{AllowHeaders: []string{"x y"}}}, `cors.allowHeaders[0]: bad header name "x y"`},
		{"cors method", Route{CORS: &CORSPolicy{AllowMethods: []string{"GET,"}}}, `cors.allowMethods[0]: bad method`},
		{"cors max age", Route{CORS: &CORSPolicy{MaxAge: -time.Second}}, `cors.maxAge: negative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := tc.route
			rt.Name, rt.Clusters = "r", to("c")
			err := New(Options{}).Update(simple([]Route{rt}, Cluster{Name: "c"}))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
	good := Route{Name: "r", Clusters: to("c"),
		Fault:   &Fault{Delay: &FaultDelay{Fixed: time.Millisecond, Percent: 0.5}, Abort: &FaultAbort{GRPCStatus: "unavailable", Percent: 12.25}},
		Mirrors: []Mirror{{Cluster: "c", Percent: 100}},
		CORS: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringExact, Value: "*"}}, AllowMethods: []string{"GET", "POST"},
			AllowHeaders: []string{"X-Foo"}, MaxAge: time.Hour, AllowCredentials: true}}
	if err := New(Options{}).Update(simple([]Route{good}, Cluster{Name: "c"})); err != nil {
		t.Errorf("good route rejected: %v", err)
	}
}

func TestClusterMetadataInRequestInfo(t *testing.T) {
	a := newBackend(t, "a", nil)
	md := map[string]string{"destination_service": "a.ns.svc.cluster.local"}
	var got map[string]string
	seen := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			got = Info(w).ClusterMetadata
		})
	}
	_, base := start(t, simple([]Route{{Clusters: to("a")}}, Cluster{Name: "a", Endpoints: eps(a.addr()), Metadata: md}),
		func(o *Options) { o.Middleware = []Middleware{seen} })
	get(t, nil, "GET", base+"/", nil, "")
	if got["destination_service"] != "a.ns.svc.cluster.local" {
		t.Errorf("ClusterMetadata %v, want the cluster's", got)
	}
}
