package proxy

import (
	"net/http"
	"strconv"
	"strings"
)

// CORS, as Envoy's CORS filter under Istio's CorsPolicy: a preflight
// (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
// origin is answered by the proxy; other requests from an allowed origin
// are forwarded and their answers get Access-Control-Allow-Origin (and
// -Allow-Credentials, -Expose-Headers); requests from other origins, and
// preflights among them, are forwarded untouched.

// corsPolicy is a compiled CORSPolicy.
type corsPolicy struct {
	origins     []stringMatcher
	credentials []string // nil: not allowed
	methods     []string
	headers     []string
	expose      []string
	maxAge      []string
}

var corsTrue = []string{"true"}

func (c *compiler) cors(f string, in *CORSPolicy) *corsPolicy {
	if in == nil {
		return nil
	}
	p := &corsPolicy{}
	for k, o := range in.AllowOrigins {
		p.origins = append(p.origins, c.stringMatcher(f+".allowOrigins["+strconv.Itoa(k)+"]", o))
	}
	for k, m := range in.AllowMethods {
		if !validHeaderName(m) { // a method is a token, as a header name
			c.errorf("%s.allowMethods[%d]: bad method %q", f, k, m)
		}
	}
	for k, h := range in.AllowHeaders {
		if !validHeaderName(h) {
			c.errorf("%s.allowHeaders[%d]: bad header name %q", f, k, h)
		}
	}
	for k, h := range in.ExposeHeaders {
		if !validHeaderName(h) {
			c.errorf("%s.exposeHeaders[%d]: bad header name %q", f, k, h)
		}
	}
	if in.MaxAge < 0 {
		c.errorf("%s.maxAge: negative", f)
	}
	if in.AllowCredentials {
		p.credentials = corsTrue
	}
	p.methods = joined(in.AllowMethods)
	p.headers = joined(in.AllowHeaders)
	p.expose = joined(in.ExposeHeaders)
	if in.MaxAge > 0 {
		p.maxAge = []string{strconv.FormatInt(int64(in.MaxAge.Seconds()), 10)}
	}
	return p
}

func joined(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return []string{strings.Join(list, ",")}
}

// allowed reports whether origin may make requests; an allowed origin
// matching "*" admits every origin, as in Envoy.
func (p *corsPolicy) allowed(origin string) bool {
	for i := range p.origins {
		m := &p.origins[i]
		if m.match("*", true) || m.match(origin, true) {
			return true
		}
	}
	return false
}

// applyCORS runs the route's CORS policy. It returns false when it has
// answered a preflight; otherwise the writer to go on with, which
// decorates the answer when the origin is allowed.
func applyCORS(w http.ResponseWriter, r *http.Request, p *corsPolicy) (http.ResponseWriter, bool) {
	vs := r.Header["Origin"]
	if len(vs) == 0 || vs[0] == "" || !p.allowed(vs[0]) {
		return w, true
	}
	origin := vs[0]
	if r.Method == http.MethodOptions && len(r.Header["Access-Control-Request-Method"]) > 0 {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = []string{origin}
		setIf(h, "Access-Control-Allow-Credentials", p.credentials)
		setIf(h, "Access-Control-Allow-Methods", echoStar(p.methods, r.Header["Access-Control-Request-Method"]))
		setIf(h, "Access-Control-Allow-Headers", echoStar(p.headers, r.Header["Access-Control-Request-Headers"]))
		setIf(h, "Access-Control-Max-Age", p.maxAge)
		h["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusOK)
		return w, false
	}
	return &corsWriter{ResponseWriter: w, origin: origin, p: p}, true
}

// echoStar answers "*" with what the preflight asked for, as Envoy does.
func echoStar(v, asked []string) []string {
	if len(v) == 1 && v[0] == "*" {
		if len(asked) == 0 || asked[0] == "" {
			return nil
		}
		return asked[:1]
	}
	return v
}

func setIf(h http.Header, name string, v []string) {
	if v != nil {
		h[name] = v
	}
}

// corsWriter adds CORS headers to the answer (the upstream's or the
// proxy's own, such as a 503 when no endpoint answers), replacing any the
// upstream sent.
type corsWriter struct {
	http.ResponseWriter
	origin string
	p      *corsPolicy
	done   bool
}

func (w *corsWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		h := w.ResponseWriter.Header()
		h["Access-Control-Allow-Origin"] = []string{w.origin}
		setIf(h, "Access-Control-Allow-Credentials", w.p.credentials)
		setIf(h, "Access-Control-Expose-Headers", w.p.expose)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *corsWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *corsWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets Info and http.ResponseController reach the proxy's writer.
func (w *corsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
