package proxy

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// hostOnly returns the authority without port and trailing dot,
// lower-cased. It allocates only when the host has upper-case letters.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") { // [v6]:port or [v6]
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[:i+1]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// hostTable finds a virtual host by authority.
type hostTable struct {
	exact map[string]*vhost
	// wildcard is keyed by the suffix with its leading dot
	// ("*.example.com" → ".example.com").
	wildcard    map[string]*vhost
	any         *vhost
	singleLabel bool
}

func (t *hostTable) lookup(authority string) *vhost {
	h := hostOnly(authority)
	if v, ok := t.exact[h]; ok {
		return v
	}
	if len(t.wildcard) > 0 {
		// Longest suffix first: the suffix after the first label, then
		// after the second, ...
		for i := 0; i < len(h); i++ {
			if h[i] != '.' {
				continue
			}
			if i == 0 { // ".foo" has no first label
				break
			}
			if v, ok := t.wildcard[h[i:]]; ok {
				return v
			}
			if t.singleLabel {
				break
			}
		}
	}
	return t.any
}

// cleanPath resolves "." and ".." segments (RFC 3986 5.2.4) so that
// matching sees the path the upstream will; it keeps a trailing slash and
// repeated slashes. The common case (nothing to resolve) does not
// allocate.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if !hasDotSegment(p) {
		return p
	}
	out := make([]byte, 0, len(p))
	i := 0
	for i < len(p) {
		// p[i] == '/' at the start of each segment.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		last := j == len(p)
		switch seg {
		case ".":
			if last {
				out = append(out, '/')
			}
		case "..":
			if k := bytes.LastIndexByte(out, '/'); k >= 0 {
				out = out[:k]
			}
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || p[i-1] != '/' { // p[0] is '/'
			continue
		}
		rest := p[i+1:]
		if rest == "" || rest[0] == '/' || rest == "." || strings.HasPrefix(rest, "./") {
			return true
		}
	}
	return false
}

// pathMatcher is a compiled PathMatch.
type pathMatcher struct {
	kind       PathKind
	value      string // for segment-prefix: without trailing slash ("" for "/")
	ignoreCase bool
	re         *regexp.Regexp
}

// match reports whether p matches and how much of it a prefix match
// consumed (for prefix rewrites).
func (m *pathMatcher) match(p string) (ok bool, n int) {
	switch m.kind {
	case PathAny:
		return true, 0
	case PathExact:
		if m.ignoreCase {
			return strings.EqualFold(p, m.value), len(p)
		}
		return p == m.value, len(p)
	case PathPrefix:
		if len(p) < len(m.value) {
			return false, 0
		}
		if m.ignoreCase {
			return strings.EqualFold(p[:len(m.value)], m.value), len(m.value)
		}
		return p[:len(m.value)] == m.value, len(m.value)
	case PathSegmentPrefix:
		return segmentPrefix(p, m.value, m.ignoreCase), len(m.value)
	case PathRegex:
		return m.re.MatchString(p), len(p)
	}
	return false, 0
}

// segmentPrefix reports whether prefix (no trailing slash; "" is "/")
// matches p element-wise.
func segmentPrefix(p, prefix string, ignoreCase bool) bool {
	if len(p) < len(prefix) {
		return false
	}
	head := p[:len(prefix)]
	if ignoreCase {
		if !strings.EqualFold(head, prefix) {
			return false
		}
	} else if head != prefix {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// stringMatcher is a compiled StringMatch.
type stringMatcher struct {
	kind  StringKind
	value string
	re    *regexp.Regexp
}

func (m *stringMatcher) match(v string, present bool) bool {
	if !present {
		return false
	}
	switch m.kind {
	case StringPresent:
		return true
	case StringExact:
		return v == m.value
	case StringPrefix:
		return strings.HasPrefix(v, m.value)
	case StringSuffix:
		return strings.HasSuffix(v, m.value)
	case StringRegex:
		return m.re.MatchString(v)
	}
	return false
}

type headerMatcher struct {
	name   string // canonical, or a pseudo-header
	m      stringMatcher
	invert bool
}

func (h *headerMatcher) match(r *http.Request) bool {
	var v string
	var present bool
	switch h.name {
	case ":authority":
		v, present = r.Host, true
	case ":method":
		v, present = r.Method, true
	case ":path":
		v, present = r.URL.RequestURI(), true
	case ":scheme":
		v, present = "http", true
		if r.TLS != nil {
			v = "https"
		}
	default:
		if vs := r.Header[h.name]; len(vs) > 0 {
			v, present = vs[0], true
		}
	}
	return h.m.match(v, present) != h.invert
}

type queryMatcher struct {
	name string
	m    stringMatcher
}

// routeMatcher is a compiled RouteMatch.
type routeMatcher struct {
	path    pathMatcher
	methods []string
	headers []headerMatcher
	query   []queryMatcher
}

// match reports whether r (with resolved path p) matches; q caches the
// parsed query across routes.
func (m *routeMatcher) match(r *http.Request, p string, q *url.Values) (ok bool, n int) {
	ok, n = m.path.match(p)
	if !ok {
		return false, 0
	}
	if len(m.methods) > 0 {
		found := false
		for _, meth := range m.methods {
			if r.Method == meth {
				found = true
				break
			}
		}
		if !found {
			return false, 0
		}
	}
	for i := range m.headers {
		if !m.headers[i].match(r) {
			return false, 0
		}
	}
	if len(m.query) > 0 {
		if *q == nil {
			*q = r.URL.Query()
		}
		for i := range m.query {
			vs, present := (*q)[m.query[i].name]
			v := ""
			if len(vs) > 0 {
				v = vs[0]
			}
			if !m.query[i].m.match(v, present) {
				return false, 0
			}
		}
	}
	return true, n
}
