package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// TextAccessLog writes one line per request in Envoy's default format:
//
//	[START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS BYTES_RECEIVED BYTES_SENT
//	DURATION UPSTREAM_TIME "X-FORWARDED-FOR" "USER-AGENT" "X-REQUEST-ID"
//	"AUTHORITY" "UPSTREAM_HOST" ROUTE CLUSTER
//
// (on one line; durations in milliseconds; "-" for what is missing).
type TextAccessLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewTextAccessLog writes to w, one Write per line.
func NewTextAccessLog(w io.Writer) *TextAccessLog { return &TextAccessLog{w: w} }

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Log implements AccessLogger.
func (l *TextAccessLog) Log(r *http.Request, info *RequestInfo) {
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, '[')
	b = info.Start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, "] \""...)
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = appendSafe(b, r.RequestURI)
	b = append(b, ' ')
	b = append(b, r.Proto...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(info.Status), 10)
	b = append(b, ' ')
	b = info.Flags.Append(b)
	b = append(b, ' ')
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
	for _, v := range [...]string{headerValue(r, "X-Forwarded-For"), headerValue(r, "User-Agent"),
		info.RequestID, r.Host, info.UpstreamHost} {
		b = append(b, " \""...)
		b = appendSafe(b, v)
		b = append(b, '"')
	}
	b = append(b, ' ')
	b = appendSafe(b, info.Route)
	b = append(b, ' ')
	b = appendSafe(b, info.Cluster)
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	*bp = b
	linePool.Put(bp)
}

func headerValue(r *http.Request, name string) string {
	if vs := r.Header[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// appendSafe appends s with control characters and quotes escaped, "-"
// for empty, so that a client cannot forge log lines.
func appendSafe(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c == 0x7f:
			b = append(b, '\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}
