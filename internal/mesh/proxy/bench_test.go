package proxy

import (
	"io"
	"net/http"
	"net/url"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// BenchmarkForward is the proxy's whole chain (access log to io.Discard,
// request id, forwarded headers, routing, forwarding over a pooled
// connection) for a small GET, without the client side.
func BenchmarkForward(b *testing.B) {
	bk := newBackend(b, "b", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	routes := []Route{
		{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/productreviewms"}}, Clusters: to("c")},
		{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/productms"}}, Clusters: to("c")},
		{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/ui"}}, Clusters: to("c")},
	}
	p := New(Options{AccessLog: NewTextAccessLog(io.Discard)})
	cfg := simple(routes, Cluster{Name: "c", Endpoints: eps(bk.addr())})
	cfg.Listeners = nil
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"})
	if err := p.Update(cfg); err != nil {
		b.Fatal(err)
	}
	h := p.Handler("main")
	u, _ := url.Parse("http://shop.test/ui/index.html")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"User-Agent": {"bench"}}, Host: "shop.test", RemoteAddr: "127.0.0.1:5555",
			RequestURI: "/ui/index.html", Body: http.NoBody}
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkRouteLookup is virtual host and route matching alone.
func BenchmarkRouteLookup(b *testing.B) {
	var routes []Route
	for _, p := range []string{"/productreviewms", "/productms", "/ui", "/api/v1", "/api/v2", "/static"} {
		routes = append(routes, Route{Match: RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: p}},
			DirectResponse: &DirectResponse{Status: 200}})
	}
	cfg := simple(routes)
	cfg.RouteTables[0].VirtualHosts = append(cfg.RouteTables[0].VirtualHosts,
		VirtualHost{Name: "shop", Domains: []string{"shop.example.com", "*.shop.example.com"}, Routes: routes})
	snap, _, err := compile(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	hosts := snap.listeners["main"].hosts
	r := &http.Request{Method: "GET", Host: "www.shop.example.com:80", Header: http.Header{}, URL: &url.URL{Path: "/static/app.js"}}
	b.ReportAllocs()
	for b.Loop() {
		vh := hosts.lookup(r.Host)
		p := cleanPath(r.URL.Path)
		var q url.Values
		for _, rt := range vh.routes {
			if ok, _ := rt.match.match(r, p, &q); ok {
				break
			}
		}
	}
}
