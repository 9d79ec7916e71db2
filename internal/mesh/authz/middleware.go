package authz

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// Bodies of the local replies, Envoy's texts.
const (
	deniedBody = "RBAC: access denied"
)

// Middleware enforces the engine that current returns (nil: allow all)
// on requests that came in through an inbound capture listener
// (RequestInfo.Direction == proxy.Inbound): a token that fails answers
// 401 with Envoy's text ("Jwt verification fails", ...); a denial
// answers 403 with body "RBAC: access denied" and flag UAEX, and is
// logged (Info) with the policy and rule that denied, or "no ALLOW
// policy matched". Clients are never told which policy denied them.
func Middleware(current func() *Engine) proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := proxy.Info(w)
			if info == nil || info.Direction != proxy.Inbound || current == nil {
				next.ServeHTTP(w, r)
				return
			}
			e := current()
			if e == nil || e.empty() {
				next.ServeHTTP(w, r)
				return
			}
			claims, aerr := e.jwt.authenticate(r.Context(), r)
			if aerr != nil {
				e.log.Info("request authentication failed", "reason", aerr.Error(),
					"method", r.Method, "path", r.URL.Path, "source", r.RemoteAddr,
					"sourcePrincipal", info.PeerPrincipal, "requestID", info.RequestID)
				realm := "http://" + r.Host + r.URL.Path
				w.Header().Set("Www-Authenticate", `Bearer realm="`+sanitizeQuoted(realm)+`", error="invalid_token"`)
				localReply(w, http.StatusUnauthorized, aerr.Message)
				return
			}
			req := RequestFor(r, info)
			req.Auth = claims
			d := e.Check(&req)
			for _, a := range d.Audited {
				e.log.Info("authorization audit", "policy", a, "method", req.Method, "path", req.Path,
					"sourcePrincipal", req.SourcePrincipal, "sourceIP", addrString(req.SourceIP),
					"requestID", info.RequestID)
			}
			for _, a := range d.DryRun {
				e.log.Info("authorization dry run", "result", a, "method", req.Method, "path", req.Path,
					"requestID", info.RequestID)
			}
			if !d.Allowed {
				info.Flags |= proxy.FlagUnauthorized
				attrs := []any{"reason", d.Reason(), "method", req.Method, "host", req.Host, "path", req.Path,
					"sourcePrincipal", req.SourcePrincipal, "sourceIP", addrString(req.SourceIP),
					"destinationPort", req.DestinationPort, "requestID", info.RequestID}
				if d.Policy != "" {
					attrs = append(attrs, "policy", d.Policy, "rule", d.Rule)
				}
				if claims != nil {
					attrs = append(attrs, "requestPrincipal", claims.Principal())
				}
				e.log.Info("request denied", attrs...)
				localReply(w, http.StatusForbidden, deniedBody)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func localReply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func sanitizeQuoted(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// RequestFor is what policies see of r, which arrived as info says
// (info may be nil). Auth is left for the caller.
func RequestFor(r *http.Request, info *proxy.RequestInfo) Request {
	req := Request{Method: r.Method, Host: r.Host, Headers: r.Header}
	if r.URL != nil {
		req.Path = NormalizePath(r.URL.Path)
	}
	req.SourceIP = hostAddr(r.RemoteAddr)
	req.RemoteIP = remoteIP(r.Header.Values("X-Forwarded-For"), req.SourceIP)
	dst := ""
	if info != nil {
		dst = info.OriginalDst
		req.SourcePrincipal = info.PeerPrincipal
	}
	if dst == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			dst = a.String()
		}
	}
	if ap, err := netip.ParseAddrPort(dst); err == nil {
		req.DestinationIP, req.DestinationPort = ap.Addr().Unmap(), ap.Port()
	}
	if r.TLS != nil {
		req.SNI = r.TLS.ServerName
	}
	return req
}

func hostAddr(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(hostport); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// remoteIP is Envoy's original client address with no trusted hops: the
// last X-Forwarded-For entry the previous hop wrote (the proxy's own
// appended entry, the peer itself, is skipped), else the peer.
func remoteIP(xff []string, peer netip.Addr) netip.Addr {
	var entries []string
	for _, v := range xff {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if n := len(entries); n > 0 && peer.IsValid() && hostAddr(entries[n-1]) == peer {
		entries = entries[:n-1]
	}
	if n := len(entries); n > 0 {
		if a := hostAddr(entries[n-1]); a.IsValid() {
			return a
		}
	}
	return peer
}

// NormalizePath is the path policies match: the decoded path (as the
// proxy forwards it) with "." and ".." segments resolved, as Envoy's
// normalize_path (Istio's default) does. Matching the decoded path
// means "/admin%2Fx" and "/%61dmin" cannot dodge a rule on "/admin/*":
// the workload receives "/admin/x" and "/admin".
func NormalizePath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return resolveDots(p)
}

// resolveDots removes "." and ".." segments (RFC 3986 5.2.4).
func resolveDots(p string) string {
	if !strings.Contains(p, ".") {
		if !strings.HasPrefix(p, "/") {
			return "/" + p
		}
		return p
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	res := "/" + strings.Join(out, "/")
	if trailing && !strings.HasSuffix(res, "/") {
		res += "/"
	}
	return res
}
