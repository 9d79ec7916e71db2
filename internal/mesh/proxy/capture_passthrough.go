package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Outbound HTTP chains and unknown hosts.
//
// A request on an outbound HTTP chain whose authority matches no virtual
// host of the chain's route table is handled as Istio's ALLOW_ANY
// "allow_any" virtual host does, following the listener's
// Capture.Unmatched: with Passthrough (the default) it is forwarded as
// it is to the connection's original destination (cluster
// "PassthroughCluster", no retries); with Blackhole it gets 404 (NR). A
// route table with a "*" virtual host of its own never falls back. A
// known host without a matching route gets 404 (NR) either way, as in
// Istio.

// PassthroughCluster is the cluster name requests and connections
// forwarded to their original destination report.
const PassthroughCluster = "PassthroughCluster"

var (
	passthroughRoute = &route{name: "allow_any", vhost: "allow_any", kind: actionForward,
		targets: []target{{cluster: newCluster(PassthroughCluster, clusterSettings{}), weight: 1}}, totalWeight: 1}
	passthroughVHost = &vhost{name: "allow_any", routes: []*route{passthroughRoute}}
)

// withPassthrough returns hosts with the allow_any virtual host as its
// catch-all, or hosts itself when it has a catch-all.
func withPassthrough(hosts *hostTable) *hostTable {
	if hosts == nil || hosts.any != nil {
		return hosts
	}
	t := *hosts
	t.any = passthroughVHost
	return &t
}

// passthroughTransport is the proxy's connection pool to original
// destinations.
type passthroughTransport struct {
	once sync.Once
	tr   *http.Transport
}

func (pt *passthroughTransport) get() *http.Transport {
	pt.once.Do(func() {
		d := &net.Dialer{Timeout: DefaultConnectTimeout, KeepAlive: 30 * time.Second}
		pt.tr = &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, &connectError{err}
				}
				return c, nil
			},
			Proxy:               nil,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     DefaultIdleTimeout,
			DisableCompression:  true,
		}
	})
	return pt.tr
}

// passthroughStage is the innermost stage of the handler chain: it
// forwards requests routed to allow_any to their original destination
// and hands every other request to next.
func (p *Proxy) passthroughStage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := Info(w)
		if info == nil || info.route != passthroughRoute {
			next.ServeHTTP(w, r)
			return
		}
		info.Cluster, info.UpstreamHost, info.Attempts = PassthroughCluster, info.OriginalDst, 1
		if info.OriginalDst == "" {
			info.Flags |= FlagNoHealthyUpstream
			localReply(w, http.StatusServiceUnavailable, "no healthy upstream\n")
			return
		}
		upgrade := info.upgrade
		if upgrade == "" {
			upgrade = upgradeOf(r)
		}
		removeHopByHop(r.Header)
		if upgrade != "" {
			r.Header["Connection"] = connectionUpgrade
			r.Header["Upgrade"] = []string{upgrade}
		}
		if _, ok := r.Header["User-Agent"]; !ok {
			r.Header["User-Agent"] = noUserAgent
		}
		ctx := r.Context()
		out := r.WithContext(ctx)
		out.URL = &url.URL{Scheme: "http", Host: info.OriginalDst, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		out.RequestURI = ""
		out.Close = false
		body := &countingBody{r: r.Body}
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			out.Body = nil
		} else {
			out.Body = body
		}
		start := time.Now()
		res, err := p.passthrough.get().RoundTrip(out)
		info.BytesReceived = body.n
		if err != nil {
			p.fail(w, info, classify(err, ctx, ctx, ctx))
			return
		}
		info.UpstreamTime = time.Since(start)
		if res.StatusCode == http.StatusSwitchingProtocols {
			p.tunnel(w, res, info, upgrade)
			return
		}
		p.copyResponse(w, r, res, info, &passthroughRoute.targets[0], ctx)
	})
}

type countingBody struct {
	r io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }
