package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Router is the chain's routing stage: it picks the virtual host and route
// for the request, answers redirects and direct responses itself, and
// passes requests to forward on to next with RequestInfo's route set.
func Router() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := Info(w)
			if info == nil || info.lis == nil {
				http.Error(w, "listener not configured", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodConnect {
				localReply(w, http.StatusMethodNotAllowed, "CONNECT is not supported\n")
				return
			}
			info.path = cleanPath(r.URL.Path)
			vh := info.lis.hosts.lookup(r.Host)
			if vh == nil {
				noRoute(w, info)
				return
			}
			info.VirtualHost = vh.name
			var q url.Values
			for _, rt := range vh.routes {
				if ok, _ := rt.match.match(r, info.path, &q); !ok {
					continue
				}
				info.route, info.Route = rt, rt.name
				switch rt.kind {
				case actionRedirect:
					redirect(w, r, info, rt)
				case actionDirect:
					h := w.Header()
					if rt.direct.contentType != nil {
						h["Content-Type"] = rt.direct.contentType
					}
					h["Content-Length"] = rt.direct.length
					rt.respHeaders.apply(h)
					w.WriteHeader(rt.direct.status)
					if r.Method != http.MethodHead {
						_, _ = w.Write(rt.direct.body)
					}
				default:
					next.ServeHTTP(w, r)
				}
				return
			}
			noRoute(w, info)
		})
	}
}

func noRoute(w http.ResponseWriter, info *RequestInfo) {
	info.Flags |= FlagNoRoute
	localReply(w, http.StatusNotFound, "404 page not found\n")
}

// localReply answers with a short text body of the proxy's own.
func localReply(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

func redirect(w http.ResponseWriter, r *http.Request, info *RequestInfo, rt *route) {
	rd := &rt.redirect
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	origScheme := scheme
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host, port := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	if rd.Host != "" {
		host = rd.Host
	}
	switch {
	case rd.Port != 0:
		port = strconv.FormatUint(uint64(rd.Port), 10)
	case scheme != origScheme:
		port = "" // a scheme change drops the port, as Envoy does
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	path := info.path
	switch {
	case rd.Path != "":
		path = rd.Path
	case rd.PrefixRewrite != "":
		_, n := rt.match.path.match(info.path)
		path = joinRewrite(rd.PrefixRewrite, info.path[n:])
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path}
	if port != "" {
		u.Host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	if !rd.StripQuery {
		u.RawQuery = r.URL.RawQuery
	}
	h := w.Header()
	h["Location"] = []string{u.String()}
	rt.respHeaders.apply(h)
	w.WriteHeader(rd.Code)
}

// joinRewrite puts rest after the rewritten prefix without doubling a
// slash ("/" + "/foo" is "/foo") and never returns an empty path.
func joinRewrite(prefix, rest string) string {
	if strings.HasSuffix(prefix, "/") && strings.HasPrefix(rest, "/") {
		rest = rest[1:]
	}
	p := prefix + rest
	if p == "" {
		return "/"
	}
	return p
}
