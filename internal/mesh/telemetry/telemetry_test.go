package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

var (
	productpage = meshconfig.Workload{Pod: "productpage-v1-abc", Namespace: "default", Name: "productpage-v1",
		CanonicalService: "productpage", CanonicalRevision: "v1", App: "productpage", Version: "v1",
		Principal: "cluster.local/ns/default/sa/bookinfo-productpage", TrustDomain: "cluster.local"}
	reviews = meshconfig.Workload{Pod: "reviews-v2-def", Namespace: "shop", Name: "reviews-v2",
		CanonicalService: "reviews", CanonicalRevision: "v2", App: "reviews", Version: "v2",
		Principal: "cluster.local/ns/shop/sa/bookinfo-reviews", TrustDomain: "cluster.local"}
	reviewsService = map[string]string{"destination_service": "reviews.shop.svc.cluster.local",
		"destination_service_name": "reviews", "destination_service_namespace": "shop"}
)

// side is what a test proxy plays: which side of a workload, and the
// peer principal its (simulated) mTLS saw.
func side(dir proxy.Direction, peerPrincipal string) proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := proxy.Info(w)
			info.Direction, info.PeerPrincipal = dir, peerPrincipal
			next.ServeHTTP(w, r)
		})
	}
}

// startProxy runs a proxy with one listener routing everything to
// upstream and returns its URL.
func startProxy(t *testing.T, upstream string, md map[string]string, mws ...proxy.Middleware) string {
	t.Helper()
	return startWith(t, proxy.Options{Middleware: mws}, &proxy.Config{
		Listeners: []proxy.Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
		RouteTables: []proxy.RouteTable{{Name: "rt", VirtualHosts: []proxy.VirtualHost{{Name: "all", Domains: []string{"*"},
			Routes: []proxy.Route{{Name: "r", Clusters: []proxy.WeightedCluster{{Cluster: "c"}}}}}}}},
		Clusters: []proxy.Cluster{{Name: "c", Endpoints: []proxy.Endpoint{{Address: upstream}}, Metadata: md}},
	})
}

// startWith runs a proxy with cfg, whose listener is "main".
func startWith(t *testing.T, opts proxy.Options, cfg *proxy.Config) string {
	t.Helper()
	opts.Logger, opts.ShutdownTimeout = slog.New(slog.DiscardHandler), time.Second
	p := proxy.New(opts)
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-p.Ready()
	return "http://" + p.Addr("main").String()
}

// sample is one series: its labels and its value (a histogram's count).
type sample struct {
	labels map[string]string
	value  float64
}

func gather(t *testing.T, g prometheus.Gatherer, name string) []sample {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// want checks that the only series of name has the labels (a subset
// given) and value.
func want(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, value float64) {
	t.Helper()
	got := gather(t, g, name)
	if len(got) != 1 {
		t.Fatalf("%s: %d series, want 1: %v", name, len(got), got)
	}
	for k, v := range labels {
		if got[0].labels[k] != v {
			t.Errorf("%s{%s}: %q, want %q", name, k, got[0].labels[k], v)
		}
	}
	if got[0].value != value {
		t.Errorf("%s: %v, want %v", name, got[0].value, value)
	}
}

func TestTwoSidecarsExchangeMetadata(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		w.Header().Set(PeerHeader, "forged") // the app cannot speak for the sidecar
		if r.URL.Path == "/grpc" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			w.Header().Set("Grpc-Status", "5")
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(app.Close)

	inReg, outReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	inbound, err := New(inReg, reviews)
	if err != nil {
		t.Fatal(err)
	}
	outbound, err := New(outReg, productpage)
	if err != nil {
		t.Fatal(err)
	}
	inURL := startProxy(t, strings.TrimPrefix(app.URL, "http://"), map[string]string{
		"destination_service": "reviews.shop.svc.cluster.local", "destination_service_name": "reviews",
		"destination_service_namespace": "shop"},
		side(proxy.Inbound, productpage.Principal), inbound.Middleware())
	outURL := startProxy(t, strings.TrimPrefix(inURL, "http://"), reviewsService,
		side(proxy.Outbound, ""), outbound.Middleware())

	res, err := http.Post(outURL+"/reviews/1", "text/plain", strings.NewReader("four"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if v := res.Header.Get(PeerHeader); v != "" {
		t.Errorf("client saw %s: %q", PeerHeader, v)
	}
	mu.Lock()
	if v := seen.Get(PeerHeader); v != "" {
		t.Errorf("app saw %s: %q", PeerHeader, v)
	}
	if tp := seen.Get("Traceparent"); !validTraceparent(tp) {
		t.Errorf("app saw traceparent %q", tp)
	}
	mu.Unlock()

	common := map[string]string{
		"source_workload": "productpage-v1", "source_workload_namespace": "default", "source_app": "productpage",
		"source_version": "v1", "source_canonical_service": "productpage", "source_canonical_revision": "v1",
		"source_cluster":       "Kubernetes",
		"source_principal":     "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
		"destination_workload": "reviews-v2", "destination_workload_namespace": "shop", "destination_app": "reviews",
		"destination_version": "v2", "destination_canonical_service": "reviews", "destination_canonical_revision": "v2",
		"destination_cluster":           "Kubernetes",
		"destination_principal":         "spiffe://cluster.local/ns/shop/sa/bookinfo-reviews",
		"destination_service":           "reviews.shop.svc.cluster.local",
		"destination_service_name":      "reviews",
		"destination_service_namespace": "shop",
		"request_protocol":              "http", "response_code": "200", "response_flags": "-", "grpc_response_status": "",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	src := with(map[string]string{"reporter": "source", "connection_security_policy": "unknown"})
	dst := with(map[string]string{"reporter": "destination", "connection_security_policy": "mutual_tls"})
	for _, tc := range []struct {
		reg    prometheus.Gatherer
		labels map[string]string
	}{{outReg, src}, {inReg, dst}} {
		want(t, tc.reg, "istio_requests_total", tc.labels, 1)
		want(t, tc.reg, "istio_request_duration_milliseconds", tc.labels, 1)
		want(t, tc.reg, "istio_request_bytes", tc.labels, 1)
		want(t, tc.reg, "istio_response_bytes", tc.labels, 1)
	}
	if got := gather(t, inReg, "istio_response_bytes"); len(got) == 1 {
		mfs, _ := inReg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "istio_response_bytes" {
				if s := mf.GetMetric()[0].GetHistogram().GetSampleSum(); s != 5 {
					t.Errorf("istio_response_bytes sum %v, want 5", s)
				}
			}
		}
	}

	// gRPC: the status comes from the trailer.
	req, _ := http.NewRequest("POST", outURL+"/grpc", strings.NewReader("x"))
	req.Header.Set("Content-Type", "application/grpc")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	var grpc []sample
	for _, s := range gather(t, outReg, "istio_requests_total") {
		if s.labels["request_protocol"] == "grpc" {
			grpc = append(grpc, s)
		}
	}
	if len(grpc) != 1 || grpc[0].labels["grpc_response_status"] != "5" || grpc[0].labels["response_code"] != "200" {
		t.Errorf("grpc series: %v", grpc)
	}
}

func TestUnknownPeers(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(app.Close)
	reg := prometheus.NewRegistry()
	m, err := New(reg, reviews)
	if err != nil {
		t.Fatal(err)
	}
	// An inbound request without metadata and without mTLS (a client
	// outside the mesh), carrying a bad PeerHeader.
	u := startProxy(t, strings.TrimPrefix(app.URL, "http://"), nil, side(proxy.Inbound, ""), m.Middleware())
	req, _ := http.NewRequest("GET", u+"/", nil)
	req.Header.Set(PeerHeader, "!!!not-base64")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get(PeerHeader) == "" {
		t.Error("inbound sidecar did not add its metadata to the response")
	}
	want(t, reg, "istio_requests_total", map[string]string{"reporter": "destination", "source_workload": "unknown",
		"source_workload_namespace": "unknown", "source_principal": "unknown", "source_cluster": "unknown",
		"destination_workload": "reviews-v2", "destination_principal": "unknown", "destination_service": "unknown",
		"connection_security_policy": "none", "response_code": "200"}, 1)
}

func TestOutboundToNonMesh(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(app.Close)
	reg := prometheus.NewRegistry()
	m, err := New(reg, productpage)
	if err != nil {
		t.Fatal(err)
	}
	u := startProxy(t, strings.TrimPrefix(app.URL, "http://"), reviewsService, side(proxy.Outbound, ""), m.Middleware())
	res, err := http.Get(u + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want(t, reg, "istio_requests_total", map[string]string{"reporter": "source", "source_workload": "productpage-v1",
		"source_principal": "unknown", "destination_workload": "unknown", "destination_principal": "unknown",
		"destination_service_name": "reviews", "connection_security_policy": "unknown", "response_code": "503"}, 1)
}

func TestTCP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, reviews)
	if err != nil {
		t.Fatal(err)
	}
	s := m.TCP(TCPConn{Direction: proxy.Inbound, PeerPrincipal: productpage.Principal, ClusterMetadata: reviewsService})
	s.Received(100)
	s.Sent(40)
	s.Sent(2)
	s.Close()
	s.Close()
	labels := map[string]string{"reporter": "destination", "source_workload": "unknown", "source_workload_namespace": "default",
		"source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage", "destination_workload": "reviews-v2",
		"destination_service": "reviews.shop.svc.cluster.local", "request_protocol": "tcp",
		"connection_security_policy": "mutual_tls", "response_flags": "-"}
	want(t, reg, "istio_tcp_connections_opened_total", labels, 1)
	want(t, reg, "istio_tcp_connections_closed_total", labels, 1)
	want(t, reg, "istio_tcp_received_bytes_total", labels, 100)
	want(t, reg, "istio_tcp_sent_bytes_total", labels, 42)
	for _, s := range gather(t, reg, "istio_tcp_sent_bytes_total") {
		if _, ok := s.labels["response_code"]; ok {
			t.Error("TCP metrics have a response_code label")
		}
	}
}

func TestLocalUpdateAndRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, reviews)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, reviews); err == nil {
		t.Error("registering twice did not fail")
	}
	w := reviews
	w.Version, w.CanonicalRevision = "v3", "v3"
	m.SetLocal(w)
	m.TCP(TCPConn{Direction: proxy.Outbound}).Close()
	want(t, reg, "istio_tcp_connections_closed_total", map[string]string{"source_version": "v3",
		"source_canonical_revision": "v3", "destination_workload": "unknown", "destination_service": "unknown"}, 1)
}

func TestClampLabel(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "unknown"},
		{"plain", "reviews", "reviews"},
		{"long", strings.Repeat("a", 300), strings.Repeat("a", maxLabelLen)},
		{"invalid utf8", "a\xffb", "a?b"},
		{"rune boundary", strings.Repeat("a", maxLabelLen-1) + "é", strings.Repeat("a", maxLabelLen-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clampLabel(tc.in); got != tc.want {
				t.Errorf("clampLabel(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPeerHeaderRoundTrip(t *testing.T) {
	var c peerCache
	loc := peer{Workload: "w", Namespace: "n", App: "a", Principal: "cluster.local/ns/n/sa/s", Cluster: "Kubernetes"}
	v := loc.encode()
	if len(v) > 200 {
		t.Errorf("header is %d bytes", len(v))
	}
	got := c.get(v)
	if got == nil || got.Workload != "w" || got.Principal != loc.Principal || got.Version != "unknown" {
		t.Errorf("decoded %+v", got)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", maxPeerHeader+1), "bnVsbA", "W10"} { // "null", "[]"
		if p := c.get(bad); p != nil && bad != "bnVsbA" {
			t.Errorf("%q decoded to %+v", bad, p)
		}
	}
}

func TestTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name string
		in   http.Header
		want string // "" : a new valid one
	}{
		{"kept", http.Header{"Traceparent": {tp}}, tp},
		{"from b3", http.Header{"X-B3-Traceid": {"4BF92F3577B34DA6A3CE929D0E0E4736"}, "X-B3-Spanid": {"00f067aa0ba902b7"},
			"X-B3-Sampled": {"1"}}, tp},
		{"from b3 64-bit", http.Header{"X-B3-Traceid": {"a3ce929d0e0e4736"}, "X-B3-Spanid": {"00f067aa0ba902b7"}},
			"00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{"new", http.Header{}, ""},
		{"bad replaced", http.Header{"Traceparent": {"00-zz"}}, ""},
		{"zero trace replaced", http.Header{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceContext(tc.in)
			got := tc.in.Get("Traceparent")
			if tc.want != "" && got != tc.want || !validTraceparent(got) {
				t.Errorf("traceparent %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAccessLogCountsRouterAnswers(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(app.Close)
	reg := prometheus.NewRegistry()
	m, err := New(reg, productpage)
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	var mu sync.Mutex
	logw := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return lines.Write(b) })
	u := startWith(t, proxy.Options{AccessLog: m.AccessLog(NewIstioAccessLog(logw)),
		Middleware: []proxy.Middleware{side(proxy.Outbound, ""), m.Middleware()}}, &proxy.Config{
		Listeners: []proxy.Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
		RouteTables: []proxy.RouteTable{{Name: "rt", VirtualHosts: []proxy.VirtualHost{{Name: "svc", Domains: []string{"svc.test"},
			Routes: []proxy.Route{
				{Name: "direct", Match: proxy.RouteMatch{Path: proxy.PathMatch{Kind: proxy.PathExact, Value: "/direct"}},
					DirectResponse: &proxy.DirectResponse{Status: 204}},
				{Name: "fwd", Clusters: []proxy.WeightedCluster{{Cluster: "c"}}}}}}}},
		Clusters: []proxy.Cluster{{Name: "c", Endpoints: []proxy.Endpoint{{Address: strings.TrimPrefix(app.URL, "http://")}},
			Metadata: reviewsService}},
	})
	for _, tc := range []struct{ host, path string }{{"other.test", "/"}, {"svc.test", "/direct"}, {"svc.test", "/x"}} {
		req, _ := http.NewRequest("GET", u+tc.path, nil)
		req.Host = tc.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	got := map[string]float64{}
	for _, s := range gather(t, reg, "istio_requests_total") {
		got[s.labels["response_code"]+" "+s.labels["response_flags"]+" "+s.labels["destination_service_name"]] += s.value
	}
	wantCounts := map[string]float64{"404 NR unknown": 1, "204 - unknown": 1, "200 - reviews": 1}
	if len(got) != len(wantCounts) {
		t.Errorf("series %v, want %v", got, wantCounts)
	}
	for k, v := range wantCounts {
		if got[k] != v {
			t.Errorf("%q: %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{`"GET / HTTP/1.1" 404 NR route_not_found - "-" 0 `, `"GET /x HTTP/1.1" 200 - via_upstream - "-" 0 0 `,
		`"svc.test" "` + strings.TrimPrefix(app.URL, "http://") + `" c - 127.0.0.1:`, " direct\n"} {
		if !strings.Contains(lines.String(), want) {
			t.Errorf("access log lacks %q:\n%s", want, lines.String())
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func TestInboundPeerTrust(t *testing.T) {
	m, err := New(nil, reviews)
	if err != nil {
		t.Fatal(err)
	}
	hdr := (&peer{Workload: "productpage-v1", Principal: productpage.Principal}).encode()
	for _, tc := range []struct {
		name, principal string
		want            bool
	}{
		{"plaintext: believed", "", true},
		{"mtls, same identity", productpage.Principal, true},
		{"mtls, another identity", "cluster.local/ns/evil/sa/default", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m.inboundPeer(http.Header{PeerHeader: {hdr}}, tc.principal)
			if (p != nil) != tc.want {
				t.Errorf("peer %+v, want believed=%t", p, tc.want)
			}
		})
	}
}

func TestResponseLabels(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0"}, {"14", "14"}, {"07", "7"}, {"", "unknown"}, {"100", "unknown"}, {"x", "unknown"}, {"1x", "unknown"},
	} {
		if got := grpcStatusLabel(tc.in); got != tc.want {
			t.Errorf("grpcStatusLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   int
		want string
	}{{0, "0"}, {200, "200"}, {599, "599"}, {999, "999"}, {1000, "0"}, {-1, "0"}} {
		if got := statusLabel(tc.in); got != tc.want {
			t.Errorf("statusLabel(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
