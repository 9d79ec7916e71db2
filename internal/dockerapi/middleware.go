package dockerapi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

// apiVersion is a parsed "major.minor" Engine API version.
type apiVersion struct{ major, minor int }

func parseAPIVersion(s string) (apiVersion, bool) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok || len(maj) > 4 || len(min) > 4 {
		return apiVersion{}, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return apiVersion{}, false
	}
	return apiVersion{a, b}, true
}

func mustAPIVersion(s string) apiVersion {
	v, ok := parseAPIVersion(s)
	if !ok {
		panic("bad API version " + s)
	}
	return v
}

var (
	maxVersion = mustAPIVersion(APIVersion)
	minVersion = mustAPIVersion(MinAPIVersion)
)

// atLeast reports whether v >= s ("1.42").
func (v apiVersion) atLeast(s string) bool {
	o := mustAPIVersion(s)
	return v.major > o.major || v.major == o.major && v.minor >= o.minor
}

func (v apiVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// serveHTTP is the whole middleware chain: recover, log, route, check
// the API version, run the endpoint, answer its error.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				s.log.Debug("request aborted", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.started() {
				// The response is under way: all that is left is to
				// break the connection so the client sees a failure.
				panic(http.ErrAbortHandler)
			}
			writeError(sw, http.StatusInternalServerError, "internal server error")
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", sw.status, "duration", time.Since(start))
	}()

	h := sw.Header()
	h.Set("Server", "Docker/"+s.opts.Version+" ("+s.opts.OSType+")")
	h.Set("Api-Version", APIVersion)
	h.Set("Ostype", s.opts.OSType)

	vs, path := splitVersion(r.URL.Path)
	handler, vars := s.match(r.Method, path)
	if handler == nil {
		writeError(sw, http.StatusNotFound, "page not found")
		return
	}
	version := maxVersion
	if vs != "" {
		v, ok := parseAPIVersion(vs)
		switch {
		case !ok:
			writeError(sw, http.StatusBadRequest, fmt.Sprintf("invalid API version %q", vs))
			return
		case !v.atLeast(MinAPIVersion):
			// Clients this old expect plain-text errors.
			http.Error(sw, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, "+
				"please upgrade your client to a newer version", vs, MinAPIVersion), http.StatusBadRequest)
			return
		case !maxVersion.atLeast(v.String()):
			writeError(sw, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. "+
				"Maximum supported API version is %s", vs, APIVersion))
			return
		}
		version = v
	}

	if err := handler(sw, r, params{vars: vars, version: version}); err != nil {
		status := statusOf(err)
		if r.Context().Err() != nil {
			s.log.Debug("request cancelled", "method", r.Method, "path", r.URL.Path, "error", err)
			return
		}
		if status >= http.StatusInternalServerError {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
		}
		if sw.started() {
			s.log.Debug("error after the response started", "method", r.Method, "path", r.URL.Path, "error", err)
			return
		}
		writeError(sw, status, errdefs.Message(err))
	}
}

// statusWriter records the status written, for logs and to know whether
// an error can still become the response.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) started() bool { return w.status != 0 || w.hijacked }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
