package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Middleware is one stage of the handler chain.
type Middleware func(http.Handler) http.Handler

// Chain wraps h in mws, the first outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// RequestInfo is one request's state as it passes the chain, and what the
// access log reports. It is valid only until the request's handler
// returns; copy what must outlive it.
type RequestInfo struct {
	Start         time.Time
	Listener      string
	ConfigVersion string
	RequestID     string
	VirtualHost   string
	Route         string
	Cluster       string
	// UpstreamHost is the endpoint of the last try.
	UpstreamHost string
	// Status is the status sent to the client (0 if none was).
	Status        int
	Flags         Flags
	Attempts      int
	BytesReceived int64
	BytesSent     int64
	// UpstreamTime is from the first try to the upstream's response
	// headers.
	UpstreamTime time.Duration
	Duration     time.Duration

	// ClusterMetadata is the chosen cluster's Cluster.Metadata (read
	// only).
	ClusterMetadata map[string]string
	// The rest is set on capture listeners (sidecars).
	// Direction is the capture listener's (empty on other listeners).
	Direction Direction
	// FilterChain is the capture FilterChain that took the connection.
	FilterChain string
	// OriginalDst is the connection's original destination (ip:port).
	OriginalDst string
	// PeerPrincipal is the client's mesh identity (its certificate's
	// SPIFFE ID without "spiffe://", as Istio's source.principal) when
	// the connection came over mesh mTLS; empty otherwise.
	PeerPrincipal string

	snap  *snapshot
	lis   *listenerSpec
	route *route
	path  string // resolved path, matched against
	// upgrade is the protocol the client asked to upgrade to.
	upgrade string
	// abort asks the root handler to abort the response (the upstream
	// failed mid-body), so the client does not take a truncated body
	// for a complete one.
	abort bool
}

// recorder is the ResponseWriter the chain sees: it counts what is sent
// and carries the RequestInfo.
type recorder struct {
	w           http.ResponseWriter
	info        RequestInfo
	wroteHeader bool
}

func (rw *recorder) Header() http.Header { return rw.w.Header() }

func (rw *recorder) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		rw.wroteHeader = true
		rw.info.Status = code
	}
	rw.w.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.wroteHeader = true
		rw.info.Status = http.StatusOK
	}
	n, err := rw.w.Write(b)
	rw.info.BytesSent += int64(n)
	return n, err
}

func (rw *recorder) Flush() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer
// (hijacking, full duplex, deadlines).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.w }

// Info returns the RequestInfo of the request being answered through w,
// or nil if w is not (and does not unwrap to) the proxy's writer.
func Info(w http.ResponseWriter) *RequestInfo {
	for {
		switch x := w.(type) {
		case *recorder:
			return &x.info
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

// root is a listener's outermost handler: it sets up the request's state
// and runs the chain.
type root struct {
	p     *Proxy
	name  string
	chain http.Handler
}

func (h *root) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := h.p.snap.Load()
	rec := recorderPool.Get().(*recorder)
	*rec = recorder{w: w}
	rec.info.Start = time.Now()
	rec.info.Listener = h.name
	rec.info.snap = snap
	rec.info.ConfigVersion = snap.cfg.Version
	rec.info.lis = snap.listeners[h.name]
	if l := rec.info.lis; l != nil && l.capture != nil {
		rec.info.lis = captureRequest(&rec.info, l, r)
	}
	h.chain.ServeHTTP(rec, r)
	abort := rec.info.abort
	*rec = recorder{}
	recorderPool.Put(rec)
	if abort {
		panic(http.ErrAbortHandler)
	}
}

// AccessLogger receives every finished request.
type AccessLogger interface {
	Log(r *http.Request, info *RequestInfo)
}

// AccessLog is the chain's first stage: it times the request and hands it
// to log when done.
func AccessLog(log AccessLogger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			info := Info(w)
			if info == nil {
				return
			}
			info.Duration = time.Since(info.Start)
			if info.Status == 0 && info.Flags&FlagDownstreamConnectionTermination != 0 {
				info.Status = 499 // client closed the request, as nginx logs it
			}
			if log != nil {
				log.Log(r, info)
			}
		})
	}
}

// maxRequestIDLen bounds a client's X-Request-Id that is kept.
const maxRequestIDLen = 128

// RequestID keeps a sane X-Request-Id from the client or sets a new
// random (UUID v4) one.
func RequestID() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := ""
			if vs := r.Header["X-Request-Id"]; len(vs) > 0 && validRequestID(vs[0]) {
				id = vs[0]
			} else {
				id = newUUID()
				r.Header["X-Request-Id"] = []string{id}
			}
			if info := Info(w); info != nil {
				info.RequestID = id
			}
			next.ServeHTTP(w, r)
		})
	}
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func newUUID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(a>>(8*i)), byte(c>>(8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// Forwarded removes hop-by-hop headers (noting a requested upgrade),
// appends the client's address to X-Forwarded-For and sets
// X-Forwarded-Proto, X-Forwarded-Host and X-Real-IP, unless the listener
// trusts the client's own X-Forwarded-Proto and -Host.
func Forwarded() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Hop-by-hop headers go first, so that a client cannot have
			// the ones added here removed by naming them in Connection.
			trust := false
			if info := Info(w); info != nil {
				info.upgrade = upgradeOf(r)
				trust = info.lis != nil && info.lis.trust
			}
			h := r.Header
			removeHopByHop(h)
			vals := new([3]string) // one allocation for the three values
			ip := remoteIP(r.RemoteAddr)
			if ip != "" {
				vals[0] = ip
				if prior := h["X-Forwarded-For"]; len(prior) > 0 {
					vals[0] = joinXFF(prior, ip)
				}
				h["X-Forwarded-For"] = vals[0:1:1]
				if !trust || len(h["X-Real-Ip"]) == 0 {
					vals[1] = ip
					h["X-Real-Ip"] = vals[1:2:2]
				}
			}
			if !trust || len(h["X-Forwarded-Proto"]) == 0 {
				if r.TLS != nil {
					h["X-Forwarded-Proto"] = protoHTTPS
				} else {
					h["X-Forwarded-Proto"] = protoHTTP
				}
			}
			if !trust || len(h["X-Forwarded-Host"]) == 0 {
				vals[2] = r.Host
				h["X-Forwarded-Host"] = vals[2:3:3]
			}
			next.ServeHTTP(w, r)
		})
	}
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

func joinXFF(prior []string, ip string) string {
	n := len(ip)
	for _, p := range prior {
		n += len(p) + 2
	}
	b := make([]byte, 0, n)
	for _, p := range prior {
		b = append(b, p...)
		b = append(b, ", "...)
	}
	return string(append(b, ip...))
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
