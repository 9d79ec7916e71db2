package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Forward is the chain's last stage: it sends the request to an endpoint
// of the route's cluster, with the route's retries and timeouts, and
// streams the answer back (or tunnels an upgraded connection).
func (p *Proxy) Forward() http.Handler {
	return http.HandlerFunc(p.forward)
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	info := Info(w)
	if info == nil || info.route == nil || info.route.kind != actionForward {
		if info != nil {
			info.Flags |= FlagNoClusterFound
		}
		localReply(w, http.StatusInternalServerError, "no cluster for this route\n")
		return
	}
	rt := info.route
	// Fault, then CORS, as Istio orders Envoy's filters: a faulted
	// request (preflights included) gets no CORS headers.
	if rt.fault != nil && !p.injectFault(w, r, info, rt.fault) {
		return
	}
	if rt.cors != nil {
		var goOn bool
		if w, goOn = applyCORS(w, r, rt.cors); !goOn {
			return
		}
	}
	tg := rt.pickTarget()
	cl := tg.cluster
	info.Cluster = cl.name
	info.ClusterMetadata = cl.metadata()
	var hk hashKey
	var setCookie string
	if cl.hash != nil {
		hk, setCookie = cl.hash.key(r)
	}

	h := r.Header
	if info.upgrade == "" {
		info.upgrade = upgradeOf(r)
	}
	removeHopByHop(h)
	upgrade := info.upgrade
	if upgrade != "" {
		h["Connection"] = connectionUpgrade
		h["Upgrade"] = []string{upgrade}
	}
	rt.reqHeaders.apply(h)
	tg.reqHeaders.apply(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noUserAgent // or net/http's client would add its own
	}

	ctx := r.Context()
	if rt.timeout > 0 && upgrade == "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.timeout)
		defer cancel()
	}

	path, rawPath := rt.rewritePath(info.path), ""
	if path == r.URL.Path {
		rawPath = r.URL.RawPath // keep the client's encoding when untouched
	}
	host := r.Host
	if rt.rewrite.Host != "" {
		host = rt.rewrite.Host
	}

	pol := &rt.retry
	var shadows []*cluster
	if rt.mirrors != nil {
		shadows = p.drawMirrors(rt.mirrors, r)
	}
	var body bodySource
	if err := body.init(r, pol.onAnswers() || shadows != nil); err != nil {
		info.Flags |= FlagDownstreamConnectionTermination
		return
	}
	if shadows != nil {
		p.sendMirrors(rt.mirrors, shadows, &mirrorRequest{method: r.Method, host: host, header: h.Clone(), body: body.buf,
			url: url.URL{Path: path, RawPath: rawPath, RawQuery: r.URL.RawQuery}}, rt.timeout)
	}
	defer func() { info.BytesReceived = body.received() }()
	if body.src != nil && r.ProtoMajor == 1 && r.ContentLength < 0 {
		// Stream both ways at once (HTTP/1 bodies of unknown length).
		_ = http.NewResponseController(w).EnableFullDuplex()
	}

	var triedBuf [4]*endpoint
	tried := triedBuf[:0]
	start := time.Now()
	retrying := false // this try is a retry (the circuit breaker counts it)
	for attempt := 0; ; attempt++ {
		ep := cl.pickKey(tried, hk)
		if ep == nil {
			info.Flags |= FlagNoHealthyUpstream
			localReply(w, http.StatusServiceUnavailable, "no healthy upstream\n")
			return
		}
		if !cl.cb.enter(retrying) {
			p.fail(w, info, failOverflow)
			return
		}
		tried = append(tried, ep)
		info.UpstreamHost, info.Attempts = ep.addr, attempt+1

		tryCtx, tryCancel := ctx, context.CancelFunc(nil)
		if pol.perTry > 0 {
			tryCtx, tryCancel = context.WithTimeout(ctx, pol.perTry)
		}
		out := r.WithContext(tryCtx)
		out.URL = &url.URL{Scheme: "http", Host: ep.addr, Path: path, RawPath: rawPath, RawQuery: r.URL.RawQuery}
		out.Host = host
		out.RequestURI = ""
		out.Close = false
		out.Body, out.ContentLength = body.forTry()

		ep.active.Add(1)
		var res *http.Response
		var err error
		if ep.h1 != nil && upgrade == "" && body.src == nil {
			res, err = ep.h1.roundTrip(out)
		} else {
			res, err = ep.tr.RoundTrip(out)
		}
		if err != nil {
			ep.active.Add(-1)
			cl.cb.leave(retrying)
			if tryCancel != nil {
				tryCancel()
			}
			f := classify(err, r.Context(), ctx, tryCtx)
			cl.od.report(ep, f.outlierCode())
			if f.retriable(pol) && attempt < pol.attempts && body.canRetry() && cl.cb.retryAllowed() {
				retrying = true
				// After a failed connect, another endpoint at once; before
				// trying one again, back off.
				if (f == failConnect && len(tried) < len(cl.endpoints())) || p.backoff(ctx, attempt) {
					continue
				}
				f = classify(ctx.Err(), r.Context(), ctx, ctx)
			} else if f.retriable(pol) && pol.attempts > 0 {
				info.Flags |= FlagUpstreamRetryLimitExceeded
			}
			p.fail(w, info, f)
			return
		}
		cl.od.report(ep, res.StatusCode)
		if upgrade == "" && pol.onStatus(res.StatusCode) && attempt < pol.attempts && body.canRetry() && cl.cb.retryAllowed() {
			discard(res.Body)
			ep.active.Add(-1)
			cl.cb.leave(retrying)
			retrying = true
			if tryCancel != nil {
				tryCancel()
			}
			if p.backoff(ctx, attempt) {
				continue
			}
			p.fail(w, info, classify(ctx.Err(), r.Context(), ctx, ctx))
			return
		}
		info.UpstreamTime = time.Since(start)
		if setCookie != "" {
			res.Header["Set-Cookie"] = append(res.Header["Set-Cookie"], setCookie)
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			p.tunnel(w, res, info, upgrade)
		} else {
			p.copyResponse(w, r, res, info, tg, tryCtx)
		}
		ep.active.Add(-1)
		cl.cb.leave(retrying)
		if tryCancel != nil {
			tryCancel()
		}
		return
	}
}

// pickTarget chooses among weighted clusters.
func (rt *route) pickTarget() *target {
	if len(rt.targets) == 1 {
		return &rt.targets[0]
	}
	n := rand.Uint32N(rt.totalWeight)
	for i := range rt.targets {
		if n < rt.targets[i].weight {
			return &rt.targets[i]
		}
		n -= rt.targets[i].weight
	}
	return &rt.targets[len(rt.targets)-1]
}

// rewritePath applies the route's rewrite to the resolved path.
func (rt *route) rewritePath(p string) string {
	path := p
	if rt.rewrite.Prefix != "" {
		switch rt.match.path.kind {
		case PathPrefix, PathSegmentPrefix:
			_, n := rt.match.path.match(p)
			path = joinRewrite(rt.rewrite.Prefix, p[n:])
		default:
			path = rt.rewrite.Prefix
		}
	}
	if rt.rewriteRe != nil {
		path = rt.rewriteRe.ReplaceAllString(path, rt.rewrite.Substitution)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	return path
}

// failure is why a try produced no response.
type failure int

const (
	failReset      failure = iota // the connection broke before the answer
	failConnect                   // no connection to the endpoint
	failTryTimeout                // the per-try timeout expired
	failTimeout                   // the route's timeout expired
	failDownstream                // the client went away
	failOverflow                  // the circuit breaker refused the try
)

func classify(err error, client, route, try context.Context) failure {
	var ce *connectError
	switch {
	case client.Err() != nil:
		return failDownstream
	case errors.Is(err, errOverflow):
		return failOverflow
	case route.Err() != nil:
		return failTimeout
	case try.Err() != nil:
		return failTryTimeout
	case errors.As(err, &ce):
		return failConnect
	}
	return failReset
}

// outlierCode is what the failure counts as for outlier detection.
func (f failure) outlierCode() int {
	switch f {
	case failConnect, failReset:
		return outlierCodeLocalFailure
	case failTryTimeout, failTimeout:
		return outlierCodeLocalTimeout
	case failOverflow:
		return outlierCodeOverflow
	}
	return outlierCodeNone
}

func (f failure) retriable(p *retryPolicy) bool {
	switch f {
	case failConnect:
		return p.on&retryConnect != 0
	case failTryTimeout:
		return p.on&(retryReset|retry5xx|retryGateway) != 0
	case failReset:
		return p.on&(retryReset|retryRefused) != 0
	}
	return false
}

func (p *Proxy) fail(w http.ResponseWriter, info *RequestInfo, f failure) {
	switch f {
	case failDownstream:
		info.Flags |= FlagDownstreamConnectionTermination
	case failTimeout, failTryTimeout:
		info.Flags |= FlagUpstreamRequestTimeout
		localReply(w, http.StatusGatewayTimeout, "upstream request timeout\n")
	case failOverflow:
		info.Flags |= FlagUpstreamOverflow
		localReply(w, http.StatusServiceUnavailable, overflowBody)
	case failConnect:
		info.Flags |= FlagUpstreamConnectionFailure
		localReply(w, http.StatusBadGateway, "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n")
	default:
		info.Flags |= FlagUpstreamConnectionTermination
		localReply(w, http.StatusBadGateway, "upstream connect error or disconnect/reset before headers. reset reason: connection termination\n")
	}
}

// Retry back-off: full jitter over an exponential window, Envoy's
// defaults.
const (
	backoffBase = 25 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
)

// backoff waits before retry number attempt+1; false if ctx ended.
func (p *Proxy) backoff(ctx context.Context, attempt int) bool {
	window := min(backoffBase<<attempt, backoffMax)
	t := time.NewTimer(rand.N(window) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// discard drains a little of a response that will not be used, so that
// its connection can be reused, and closes it.
func discard(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyResponse streams res to the client.
func (p *Proxy) copyResponse(w http.ResponseWriter, r *http.Request, res *http.Response, info *RequestInfo, tg *target, ctx context.Context) {
	defer res.Body.Close()
	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		dst[k] = vv
	}
	info.route.respHeaders.apply(dst)
	tg.respHeaders.apply(dst)
	if len(res.Trailer) > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	streaming := res.ContentLength < 0
	flusher, _ := w.(http.Flusher)
	if streaming && flusher != nil {
		flusher.Flush() // headers now: the body may take its time
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				info.Flags |= FlagDownstreamConnectionTermination
				return
			}
			if streaming && flusher != nil {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case r.Context().Err() != nil:
				info.Flags |= FlagDownstreamConnectionTermination
			case ctx.Err() != nil:
				info.Flags |= FlagUpstreamRequestTimeout
			default:
				info.Flags |= FlagUpstreamConnectionTermination
			}
			info.abort = true
			return
		}
	}
	for k, vv := range res.Trailer {
		dst[k] = vv
	}
}

// bodySource hands the request body to each try. A body that may be
// needed again after an answer (small, known length) is read into memory
// first; otherwise each try gets a view of the stream, and a retry is
// possible only while none of it has been sent.
type bodySource struct {
	src      io.Reader // nil: no body
	length   int64
	buf      []byte
	buffered bool
	cur      *tryBody
	prev     int64 // bytes sent by earlier tries
}

func (b *bodySource) init(r *http.Request, keep bool) error {
	b.length = r.ContentLength
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	b.src = r.Body
	if keep && r.ContentLength > 0 && r.ContentLength <= MaxRetryBody {
		b.buf = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b.buf); err != nil {
			return err
		}
		b.buffered = true
	}
	return nil
}

func (b *bodySource) forTry() (io.ReadCloser, int64) {
	switch {
	case b.src == nil:
		return nil, 0
	case b.buffered:
		return io.NopCloser(bytes.NewReader(b.buf)), b.length
	}
	if b.cur != nil {
		b.cur.dead.Store(true)
		b.prev += b.cur.n.Load()
	}
	b.cur = &tryBody{src: b.src}
	return b.cur, b.length
}

func (b *bodySource) canRetry() bool {
	return b.src == nil || b.buffered || b.cur == nil || !b.cur.read.Load()
}

// received is the number of body bytes read from the client.
func (b *bodySource) received() int64 {
	switch {
	case b.buffered:
		return int64(len(b.buf))
	case b.cur != nil:
		return b.prev + b.cur.n.Load()
	}
	return b.prev
}

// tryBody is one try's view of the request body; Close leaves the
// client's body open for the next try.
type tryBody struct {
	src  io.Reader
	n    atomic.Int64
	read atomic.Bool
	dead atomic.Bool
}

var errTryOver = errors.New("request body belongs to a later try")

func (t *tryBody) Read(p []byte) (int, error) {
	if t.dead.Load() {
		return 0, errTryOver
	}
	t.read.Store(true)
	n, err := t.src.Read(p)
	t.n.Add(int64(n))
	return n, err
}

func (t *tryBody) Close() error { return nil }

// Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded.
var hopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

var (
	noUserAgent       = []string{""}
	connectionUpgrade = []string{"Upgrade"}
	teTrailers        = []string{"trailers"}
)

// removeHopByHop deletes hop-by-hop headers and those named in
// Connection, keeping "TE: trailers" (gRPC needs it end to end).
func removeHopByHop(h http.Header) {
	trailers := false
	for _, v := range h["Te"] {
		if hasToken(v, "trailers") {
			trailers = true
		}
	}
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = strings.TrimSpace(tok); tok != "" {
				delete(h, http.CanonicalHeaderKey(tok))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailers {
		h["Te"] = teTrailers
	}
}

// upgradeOf returns the protocol an HTTP/1.1 request asks to upgrade to
// ("" if none), read before hop-by-hop headers are removed.
func upgradeOf(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	for _, v := range r.Header["Connection"] {
		if hasToken(v, "upgrade") {
			if vs := r.Header["Upgrade"]; len(vs) > 0 {
				return vs[0]
			}
		}
	}
	return ""
}

func hasToken(v, token string) bool {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(tok), token) {
			return true
		}
	}
	return false
}
