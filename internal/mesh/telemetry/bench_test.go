package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/internal/mesh/proxy"
)

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware is the proxy's whole chain for a small GET over a
// pooled connection, without and with the telemetry middleware (outbound
// side: metadata exchange, trace context, four metric updates), so that
// the difference is the cost of telemetry per request.
func BenchmarkMiddleware(b *testing.B) {
	peerHdr := (&peer{Workload: "reviews-v2", Namespace: "shop", Principal: "cluster.local/ns/shop/sa/r"}).encode()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(PeerHeader, peerHdr)
		_, _ = io.WriteString(w, "hello")
	}))
	b.Cleanup(app.Close)
	for _, bc := range []struct {
		name string
		with bool
	}{{"without", false}, {"with", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var opts proxy.Options
			if bc.with {
				m, err := New(prometheus.NewRegistry(), productpage)
				if err != nil {
					b.Fatal(err)
				}
				opts.Middleware = []proxy.Middleware{m.Middleware()}
			}
			p := proxy.New(opts)
			err := p.Update(&proxy.Config{
				Listeners: []proxy.Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
				RouteTables: []proxy.RouteTable{{Name: "rt", VirtualHosts: []proxy.VirtualHost{{Name: "all", Domains: []string{"*"},
					Routes: []proxy.Route{{Clusters: []proxy.WeightedCluster{{Cluster: "c"}}}}}}}},
				Clusters: []proxy.Cluster{{Name: "c", Endpoints: []proxy.Endpoint{{Address: strings.TrimPrefix(app.URL, "http://")}},
					Metadata: reviewsService}},
			})
			if err != nil {
				b.Fatal(err)
			}
			h := p.Handler("main")
			u, _ := url.Parse("http://reviews.shop/reviews/1")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r := &http.Request{Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"User-Agent": {"bench"}}, Host: "reviews.shop", RemoteAddr: "127.0.0.1:5555",
					RequestURI: "/reviews/1", Body: http.NoBody}
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkRecord is the metric updates of one request alone.
func BenchmarkRecord(b *testing.B) {
	m, err := New(prometheus.NewRegistry(), productpage)
	if err != nil {
		b.Fatal(err)
	}
	dst := decodePeer((&peer{Workload: "reviews-v2", Namespace: "shop", Principal: "cluster.local/ns/shop/sa/r"}).encode())
	r := &http.Request{Header: http.Header{}}
	info := &proxy.RequestInfo{Status: 200, ClusterMetadata: reviewsService, BytesSent: 100}
	resp := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		m.record(r, resp, info, &m.local.Load().peer, dst, false)
	}
}
