package telemetry

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// AccessLog returns a proxy.AccessLogger (for proxy.Options.AccessLog)
// that records the requests the middleware never sees — those the
// proxy's router answers itself: no route (NR, 404), redirects and direct
// responses — so that, with both wired, every request is counted once, as
// Istio counts them. It then hands each request to next (nil: none).
func (m *Metrics) AccessLog(next proxy.AccessLogger) proxy.AccessLogger {
	m.logging.Store(true)
	return &metricsLog{m: m, next: next}
}

type metricsLog struct {
	m    *Metrics
	next proxy.AccessLogger
}

func (l *metricsLog) Log(r *http.Request, info *proxy.RequestInfo) {
	if start, ok := l.m.seen.LoadAndDelete(info); !ok || start.(time.Time) != info.Start {
		loc := l.m.local.Load()
		if info.Direction == proxy.Inbound {
			src := l.m.inboundPeer(r.Header, info.PeerPrincipal)
			l.m.record(r, http.Header{}, info, src, &loc.peer, true)
		} else {
			l.m.record(r, http.Header{}, info, &loc.peer, nil, false)
		}
	}
	if l.next != nil {
		l.next.Log(r, info)
	}
}

// IstioAccessLog writes one line per request in Istio's default text
// format (EnvoyTextLogFormat):
//
//	[START_TIME] "METHOD PATH PROTOCOL" RESPONSE_CODE RESPONSE_FLAGS
//	RESPONSE_CODE_DETAILS CONNECTION_TERMINATION_DETAILS
//	"UPSTREAM_TRANSPORT_FAILURE_REASON" BYTES_RECEIVED BYTES_SENT DURATION
//	UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR" "USER-AGENT" "X-REQUEST-ID"
//	"AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER UPSTREAM_LOCAL_ADDRESS
//	DOWNSTREAM_LOCAL_ADDRESS DOWNSTREAM_REMOTE_ADDRESS
//	REQUESTED_SERVER_NAME ROUTE_NAME
//
// (on one line; "-" for what the proxy does not know).
type IstioAccessLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewIstioAccessLog writes to w, one Write per line.
func NewIstioAccessLog(w io.Writer) *IstioAccessLog { return &IstioAccessLog{w: w} }

// Log implements proxy.AccessLogger.
func (l *IstioAccessLog) Log(r *http.Request, info *proxy.RequestInfo) {
	b := make([]byte, 0, 512)
	b = append(b, '[')
	b = info.Start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, "] \""...)
	b = appendSafe(b, r.Method)
	b = append(b, ' ')
	b = appendSafe(b, r.RequestURI)
	b = append(b, ' ')
	b = appendSafe(b, r.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(info.Status), 10)
	b = append(b, ' ')
	b = info.Flags.Append(b)
	b = append(b, ' ')
	b = append(b, codeDetails(info)...)
	b = append(b, " - \"-\" "...)
	b = strconv.AppendInt(b, info.BytesReceived, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, info.BytesSent, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, info.Duration.Milliseconds(), 10)
	b = append(b, ' ')
	if info.UpstreamTime > 0 {
		b = strconv.AppendInt(b, info.UpstreamTime.Milliseconds(), 10)
	} else {
		b = append(b, '-')
	}
	for _, v := range [...]string{first(r.Header, "X-Forwarded-For"), first(r.Header, "User-Agent"),
		info.RequestID, r.Host, info.UpstreamHost} {
		b = append(b, " \""...)
		b = appendSafe(b, v)
		b = append(b, '"')
	}
	local := info.OriginalDst
	if local == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a.String()
		}
	}
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	for _, v := range [...]string{info.Cluster, "", local, r.RemoteAddr, sni, info.Route} {
		b = append(b, ' ')
		b = appendSafe(b, v)
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// codeDetails is Envoy's RESPONSE_CODE_DETAILS for what the proxy knows.
func codeDetails(info *proxy.RequestInfo) string {
	f := info.Flags
	switch {
	case f.Has(proxy.FlagNoRoute):
		return "route_not_found"
	case f.Has(proxy.FlagFaultInjected):
		return "fault_filter_abort"
	case f.Has(proxy.FlagUnauthorized):
		return "rbac_access_denied"
	case f.Has(proxy.FlagNoHealthyUpstream):
		return "no_healthy_upstream"
	case f.Has(proxy.FlagUpstreamOverflow):
		return "overflow"
	case f.Has(proxy.FlagUpstreamRequestTimeout):
		return "response_timeout"
	case f.Has(proxy.FlagUpstreamConnectionFailure):
		return "upstream_reset_before_response_started{connection_failure}"
	case f.Has(proxy.FlagUpstreamConnectionTermination):
		return "upstream_reset_before_response_started{connection_termination}"
	case f.Has(proxy.FlagDownstreamConnectionTermination):
		return "downstream_remote_disconnect"
	case info.UpstreamHost != "" && info.Status != 0:
		return "via_upstream"
	}
	return "-"
}

// appendSafe appends s with quotes, backslashes and control characters
// escaped, "-" for empty, so that a client cannot forge log lines.
func appendSafe(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	const hexDigits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c == 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}
