package proxy

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkRouteExtras is BenchmarkForward's chain with a route that has
// none of fault, mirrors and CORS ("none": the cost of their hooks is a
// nil check each) and with each present but not applying to the request.
func BenchmarkRouteExtras(b *testing.B) {
	bk := newBackend(b, "b", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	for _, bc := range []struct {
		name  string
		route Route
	}{
		{"none", Route{}},
		{"fault-not-drawn", Route{Fault: &Fault{Delay: &FaultDelay{Fixed: time.Second, Percent: 0.1},
			Abort: &FaultAbort{Status: 503, Percent: 0.1}}}},
		{"mirror-not-drawn", Route{Mirrors: []Mirror{{Cluster: "c", Percent: 0.1}}}},
		{"cors-no-origin", Route{CORS: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringExact, Value: "https://a"}}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt := bc.route
			rt.Clusters = to("c")
			p := New(Options{AccessLog: NewTextAccessLog(io.Discard), Random: func(n uint32) uint32 { return n - 1 }})
			if err := p.Update(simple([]Route{rt}, Cluster{Name: "c", Endpoints: eps(bk.addr())})); err != nil {
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
		})
	}
}
