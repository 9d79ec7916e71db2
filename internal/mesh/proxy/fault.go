package proxy

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault injection, as Envoy's fault filter under Istio's
// HTTPFaultInjection: a route's delay is drawn first and waited out
// before the route's timeout starts (so the timeout does not include
// it), ending early when the client goes away; then the abort is drawn,
// and a request that gets it is answered by the proxy with "fault filter
// abort" instead of being forwarded.

// perMillion is the resolution of percentages (Envoy's
// FractionalPercent with denominator MILLION, as Istio sends them).
const perMillion = 1_000_000

// faultPolicy is a compiled Fault.
type faultPolicy struct {
	delay      time.Duration
	delayShare uint32 // per million; 0: no delay
	abort      bool
	abortShare uint32
	status     int
	grpcStatus int // -1: none
}

// share converts a 0–100 percentage to a per-million threshold.
func share(percent float64) uint32 {
	return uint32(math.Round(percent * perMillion / 100))
}

// validPercent accepts 0–100 (NaN and infinities are not).
func validPercent(p float64) bool { return p >= 0 && p <= 100 }

// draw reports whether a request falls within a per-million share.
func (p *Proxy) draw(perMil uint32) bool {
	switch {
	case perMil == 0:
		return false
	case perMil >= perMillion:
		return true
	case p.opts.Random != nil:
		return p.opts.Random(perMillion) < perMil
	}
	return rand.Uint32N(perMillion) < perMil
}

func (c *compiler) fault(f string, in *Fault) *faultPolicy {
	if in == nil {
		return nil
	}
	fp := &faultPolicy{grpcStatus: -1}
	if in.Delay == nil && in.Abort == nil {
		c.errorf("%s: a delay or an abort required", f)
	}
	if d := in.Delay; d != nil {
		if d.Fixed <= 0 {
			c.errorf("%s.delay.fixed: must be positive", f)
		}
		if !validPercent(d.Percent) {
			c.errorf("%s.delay.percent: %v (0 to 100)", f, d.Percent)
		}
		fp.delay, fp.delayShare = d.Fixed, share(d.Percent)
	}
	if a := in.Abort; a != nil {
		fp.abort, fp.status = true, a.Status
		if !validPercent(a.Percent) {
			c.errorf("%s.abort.percent: %v (0 to 100)", f, a.Percent)
		}
		fp.abortShare = share(a.Percent)
		if a.Status == 0 && a.GRPCStatus == "" {
			c.errorf("%s.abort: status or grpcStatus required", f)
		}
		if a.Status != 0 && (a.Status < 200 || a.Status > 599) {
			c.errorf("%s.abort.status: %d (200 to 599)", f, a.Status)
		}
		if a.GRPCStatus != "" {
			code, ok := parseGRPCStatus(a.GRPCStatus)
			if !ok {
				c.errorf("%s.abort.grpcStatus: unknown status %q", f, a.GRPCStatus)
			}
			fp.grpcStatus = code
		}
	}
	return fp
}

// injectFault applies the route's fault to a request about to be
// forwarded. It returns false when the request is done (aborted, or the
// client left during the delay) and must not be forwarded.
func (p *Proxy) injectFault(w http.ResponseWriter, r *http.Request, info *RequestInfo, fp *faultPolicy) bool {
	if fp.delayShare > 0 && p.draw(fp.delayShare) {
		info.Flags |= FlagDelayInjected
		t := time.NewTimer(fp.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			info.Flags |= FlagDownstreamConnectionTermination
			return false
		}
	}
	if !fp.abort || !p.draw(fp.abortShare) {
		return true
	}
	info.Flags |= FlagFaultInjected
	grpc := isGRPC(r)
	switch {
	case grpc && fp.grpcStatus >= 0:
		grpcReply(w, fp.grpcStatus)
	case grpc:
		grpcReply(w, grpcFromHTTP(fp.status))
	case fp.status != 0:
		localReply(w, fp.status, faultBody)
	default:
		localReply(w, http.StatusOK, faultBody) // only a gRPC status: Envoy answers 200
	}
	return false
}

const faultBody = "fault filter abort"

// isGRPC reports whether r is a gRPC request (content type
// application/grpc, +proto and the like included).
func isGRPC(r *http.Request) bool {
	vs := r.Header["Content-Type"]
	if len(vs) == 0 {
		return false
	}
	ct := vs[0]
	return strings.HasPrefix(ct, "application/grpc") &&
		(len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// grpcReply answers a gRPC request with a trailers-only response: 200,
// the status in headers.
func grpcReply(w http.ResponseWriter, code int) {
	h := w.Header()
	h["Content-Type"] = grpcContentType
	h["Grpc-Status"] = []string{strconv.Itoa(code)}
	h["Grpc-Message"] = faultMessage
	h["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusOK)
}

var (
	grpcContentType = []string{"application/grpc"}
	faultMessage    = []string{"fault filter abort"}
	zeroLength      = []string{"0"}
)

// grpcCodes are gRPC's status names, indexed by code.
var grpcCodes = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// parseGRPCStatus reads a gRPC status as Istio spells it ("UNAVAILABLE")
// or as a number ("14").
func parseGRPCStatus(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < len(grpcCodes)
	}
	for i, name := range grpcCodes {
		if strings.EqualFold(s, name) {
			return i, true
		}
	}
	return 0, false
}

// grpcFromHTTP maps an HTTP status to a gRPC one as Envoy's local
// replies to gRPC requests do.
func grpcFromHTTP(status int) int {
	switch status {
	case 400:
		return 13 // INTERNAL
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404:
		return 12 // UNIMPLEMENTED
	case 429, 502, 503, 504:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}
