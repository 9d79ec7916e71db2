package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// Middleware records every request that reaches it (put it first among
// proxy.Options.Middleware: it then also sees what later stages, such as
// authorization, answer) and does the metadata exchange. On an inbound
// capture listener it reports as the destination (reporter
// "destination"), on outbound ones and on other listeners (gateways) as
// the source.
func (m *Metrics) Middleware() proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := proxy.Info(w)
			if info == nil {
				next.ServeHTTP(w, r)
				return
			}
			traceContext(r.Header)
			if m.logging.Load() {
				m.seen.Store(info, info.Start)
			}
			loc := m.local.Load()
			if info.Direction == proxy.Inbound {
				src := m.inboundPeer(r.Header, info.PeerPrincipal)
				delete(r.Header, PeerHeader)
				xw := &exchangeWriter{ResponseWriter: w, own: loc.header}
				next.ServeHTTP(xw, r)
				xw.take()
				m.record(r, w.Header(), info, src, &loc.peer, true)
				return
			}
			r.Header[PeerHeader] = loc.header
			xw := &exchangeWriter{ResponseWriter: w, m: m}
			next.ServeHTTP(xw, r)
			xw.take()
			m.record(r, w.Header(), info, &loc.peer, xw.peer, false)
		})
	}
}

// exchangeWriter does the response's side of the exchange as the
// response goes out: an inbound sidecar puts its own PeerHeader on it
// (replacing any the app sent), an outbound one takes the peer's off.
type exchangeWriter struct {
	http.ResponseWriter
	own   []string // inbound: our PeerHeader
	m     *Metrics // outbound: where peers are decoded
	taken bool
	peer  *peer
}

func (w *exchangeWriter) take() {
	if w.taken {
		return
	}
	w.taken = true
	h := w.ResponseWriter.Header()
	if w.own != nil {
		h[PeerHeader] = w.own
		return
	}
	if vs := h[PeerHeader]; len(vs) > 0 {
		w.peer = w.m.peers.get(vs[0])
		delete(h, PeerHeader)
	}
}

func (w *exchangeWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.take()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *exchangeWriter) Write(b []byte) (int, error) {
	w.take()
	return w.ResponseWriter.Write(b)
}

func (w *exchangeWriter) Flush() {
	w.take()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets proxy.Info and http.ResponseController reach the proxy's
// writer.
func (w *exchangeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// record counts one finished request.
func (m *Metrics) record(r *http.Request, resp http.Header, info *proxy.RequestInfo, src, dst *peer, inbound bool) {
	var l labels
	l.endpoints(src, dst)
	l.service(info.ClusterMetadata)
	if inbound {
		l[lReporter] = reporterDestination
		if src == nil && info.PeerPrincipal != "" {
			l[lSrcNamespace] = namespaceOf(info.PeerPrincipal)
		}
		if info.PeerPrincipal != "" {
			l[lSrcPrincipal] = principalLabel(info.PeerPrincipal)
			l[lDstPrincipal] = dst.principal
			l[lSecurityPolicy] = "mutual_tls"
		} else {
			l[lSrcPrincipal], l[lDstPrincipal] = Unknown, Unknown
			l[lSecurityPolicy] = "none"
		}
	} else {
		// The source cannot see the connection's security; a peer that
		// answered the exchange is a sidecar, which the mesh reaches
		// over mTLS.
		l[lReporter] = reporterSource
		l[lSecurityPolicy] = Unknown
		l[lSrcPrincipal], l[lDstPrincipal] = Unknown, Unknown
		if dst != nil && dst.Principal != "" {
			l[lSrcPrincipal], l[lDstPrincipal] = src.principal, dst.principal
		}
	}
	l[lProtocol] = "http"
	l[lGRPCStatus] = ""
	if isGRPC(r) {
		l[lProtocol] = "grpc"
		if vs := resp["Grpc-Status"]; len(vs) > 0 {
			l[lGRPCStatus] = grpcStatusLabel(vs[0])
		}
	}
	l[lResponseCode] = statusLabel(info.Status)
	l[lResponseFlags] = info.Flags.String()

	s := m.httpSeries(&l)
	s.requests.Inc()
	s.duration.Observe(float64(time.Since(info.Start)) / float64(time.Millisecond))
	s.requestBytes.Observe(float64(info.BytesReceived))
	s.responseBytes.Observe(float64(info.BytesSent))
}

// series is one label set's HTTP metrics.
type series struct {
	requests                              prometheus.Counter
	duration, requestBytes, responseBytes prometheus.Observer
}

// maxCachedSeries bounds the series cache; it starts over when full (the
// metrics themselves stay).
const maxCachedSeries = 4096

// httpSeries finds the metrics for l: a cache keyed by the joined label
// values saves hashing them four times over in the metric vectors.
func (m *Metrics) httpSeries(l *labels) *series {
	var kb [512]byte
	key := kb[:0]
	for _, v := range l {
		key = append(key, v...)
		key = append(key, 0xff) // never in a label value (valid UTF-8)
	}
	m.seriesMu.RLock()
	s := m.series[string(key)]
	m.seriesMu.RUnlock()
	if s != nil {
		return s
	}
	lv := l[:]
	s = &series{requests: m.requests.WithLabelValues(lv...), duration: m.duration.WithLabelValues(lv...),
		requestBytes: m.requestBytes.WithLabelValues(lv...), responseBytes: m.responseBytes.WithLabelValues(lv...)}
	m.seriesMu.Lock()
	if m.series == nil || len(m.series) >= maxCachedSeries {
		m.series = make(map[string]*series)
	}
	m.series[string(key)] = s
	m.seriesMu.Unlock()
	return s
}

var statusLabels = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusLabel(code int) string {
	switch {
	case code >= 0 && code < len(statusLabels):
		return statusLabels[code]
	case code >= 0 && code < 1000:
		return strconv.Itoa(code)
	}
	return "0"
}

// grpcStatusLabel keeps a gRPC status code (a number, 0 to 99) and
// reports anything else as unknown, so that an upstream cannot mint
// series.
func grpcStatusLabel(v string) string {
	if len(v) == 0 || len(v) > 2 || v[0] < '0' || v[0] > '9' || len(v) == 2 && (v[1] < '0' || v[1] > '9') {
		return Unknown
	}
	return statusLabels[atoi2(v)]
}

func atoi2(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		n = n*10 + int(v[i]-'0')
	}
	return n
}

// inboundPeer is the client's workload from its PeerHeader. Over mesh
// mTLS the header is believed only when it names the identity the
// client's certificate proved.
func (m *Metrics) inboundPeer(h http.Header, peerPrincipal string) *peer {
	vs := h[PeerHeader]
	if len(vs) == 0 {
		return nil
	}
	p := m.peers.get(vs[0])
	if p != nil && peerPrincipal != "" && p.Principal != peerPrincipal {
		return nil
	}
	return p
}

func isGRPC(r *http.Request) bool {
	vs := r.Header["Content-Type"]
	if len(vs) == 0 {
		return false
	}
	ct, ok := strings.CutPrefix(vs[0], "application/grpc")
	return ok && (ct == "" || ct[0] == '+' || ct[0] == ';')
}

// namespaceOf is the namespace in a principal
// ("cluster.local/ns/NS/sa/SA"), Unknown if it has none.
func namespaceOf(principal string) string {
	_, rest, ok := strings.Cut(principal, "/ns/")
	if !ok {
		return Unknown
	}
	ns, _, _ := strings.Cut(rest, "/")
	return clampLabel(ns)
}
