package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// traceContext makes sure the request carries W3C trace context, so that
// apps see (and pass on) a trace: a request without a valid traceparent
// gets one, continuing a B3 trace when the request has one, else
// starting a new one (not sampled: the mesh exports no spans).
// Everything else (x-b3-*, x-request-id, tracestate) passes through
// untouched.
func traceContext(h http.Header) {
	if vs := h["Traceparent"]; len(vs) > 0 && validTraceparent(vs[0]) {
		return
	}
	var b [55]byte
	copy(b[:], "00-")
	trace, span := b[3:35], b[36:52]
	b[35], b[52] = '-', '-'
	copy(b[53:], "00")
	tid, sid := first(h, "X-B3-Traceid"), first(h, "X-B3-Spanid")
	switch {
	case isHex(tid, 32) && isHex(sid, 16):
		copy(trace, tid)
		copy(span, sid)
		if s := first(h, "X-B3-Sampled"); s == "1" || s == "true" {
			copy(b[53:], "01")
		}
	case isHex(tid, 16) && isHex(sid, 16):
		copy(trace, "0000000000000000")
		copy(trace[16:], tid)
		copy(span, sid)
	default:
		var id [24]byte
		_, _ = rand.Read(id[:])
		hex.Encode(trace, id[:16])
		hex.Encode(span, id[16:])
	}
	for i := 3; i < 52; i++ { // W3C wants lower-case hex
		if c := b[i]; c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	h["Traceparent"] = []string{string(b[:])}
}

func first(h http.Header, k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// validTraceparent checks the version 00 form: 00-<32 hex>-<16 hex>-<2
// hex>, with non-zero ids.
func validTraceparent(v string) bool {
	if len(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	return isHex(v[0:2], 2) && v[0:2] != "ff" && isHex(v[3:35], 32) && isHex(v[36:52], 16) && isHex(v[53:], 2) &&
		v[3:35] != "00000000000000000000000000000000" && v[36:52] != "0000000000000000"
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
