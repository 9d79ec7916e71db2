package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// answer is a route that answers with its own name.
func answer(name string, m RouteMatch) Route {
	return Route{Name: name, Match: m, DirectResponse: &DirectResponse{Status: 200, Body: name}}
}

func TestMatchingOrderAndPrecedence(t *testing.T) {
	cfg := &Config{
		Version:   "match",
		Listeners: []Listener{{Name: "main", Address: "127.0.0.1:0", RouteTable: "rt"}},
		RouteTables: []RouteTable{{Name: "rt", VirtualHosts: []VirtualHost{
			{Name: "exact", Domains: []string{"shop.example.com"}, Routes: []Route{
				answer("shop-exact", RouteMatch{Path: PathMatch{Kind: PathExact, Value: "/cart"}}),
				answer("shop-api-v2", RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/api"},
					Headers: []HeaderMatch{{Name: "x-version", StringMatch: StringMatch{Kind: StringExact, Value: "2"}}}}),
				answer("shop-api-post", RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/api/"}, Methods: []string{"post"}}),
				answer("shop-api", RouteMatch{Path: PathMatch{Kind: PathSegmentPrefix, Value: "/api"}}),
				answer("shop-regex", RouteMatch{Path: PathMatch{Kind: PathRegex, Value: `/items/[0-9]+`}}),
				answer("shop-query", RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/q"},
					QueryParams: []QueryMatch{{Name: "debug", StringMatch: StringMatch{Kind: StringPresent}}}}),
				answer("shop-no-agent", RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/q"},
					Headers: []HeaderMatch{{Name: "user-agent", StringMatch: StringMatch{Kind: StringRegex, Value: ".*curl.*"}, Invert: true}}}),
				answer("shop-string-prefix", RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/q", IgnoreCase: true}}),
			}},
			{Name: "wild", Domains: []string{"*.example.com"}, Routes: []Route{answer("wild", RouteMatch{})}},
			{Name: "wild-deeper", Domains: []string{"*.eu.example.com"}, Routes: []Route{answer("wild-eu", RouteMatch{})}},
			{Name: "any", Domains: []string{"*"}, Routes: []Route{
				answer("any-root-exact", RouteMatch{Path: PathMatch{Kind: PathExact, Value: "/"}}),
				answer("any-authority", RouteMatch{Headers: []HeaderMatch{{Name: ":authority", StringMatch: StringMatch{Kind: StringSuffix, Value: ".test"}}}}),
			}},
		}}},
	}
	_, base := start(t, cfg)
	cases := []struct {
		name, method, host, path string
		hdr                      map[string]string
		want                     string // route name, or "404"
	}{
		{name: "exact path", host: "shop.example.com", path: "/cart", want: "shop-exact"},
		{name: "exact path is not a prefix", host: "shop.example.com", path: "/cart/x", want: "404"},
		{name: "host with port and upper case", host: "SHOP.example.com:8080", path: "/cart", want: "shop-exact"},
		{name: "host with trailing dot", host: "shop.example.com.", path: "/cart", want: "shop-exact"},
		{name: "header match wins by order", host: "shop.example.com", path: "/api/x", hdr: map[string]string{"X-Version": "2"}, want: "shop-api-v2"},
		{name: "method match", method: "POST", host: "shop.example.com", path: "/api/x", want: "shop-api-post"},
		{name: "segment prefix with trailing slash value matches bare", method: "POST", host: "shop.example.com", path: "/api", want: "shop-api-post"},
		{name: "segment prefix", host: "shop.example.com", path: "/api/", want: "shop-api"},
		{name: "segment prefix is element-wise", host: "shop.example.com", path: "/apis", want: "404"},
		{name: "dot segments resolved before matching", host: "shop.example.com", path: "/x/../api/y", want: "shop-api"},
		{name: "dot segments cannot climb out", host: "shop.example.com", path: "/api/../cart", want: "shop-exact"},
		{name: "regex is anchored", host: "shop.example.com", path: "/items/42", want: "shop-regex"},
		{name: "regex no partial", host: "shop.example.com", path: "/items/42/x", want: "404"},
		{name: "query present", host: "shop.example.com", path: "/q?debug=", want: "shop-query"},
		{name: "inverted header matches absent", host: "shop.example.com", path: "/q", hdr: map[string]string{"User-Agent": "Go"}, want: "shop-no-agent"},
		{name: "inverted header fails present", host: "shop.example.com", path: "/q", hdr: map[string]string{"User-Agent": "curl/8"}, want: "shop-string-prefix"},
		{name: "wildcard", host: "www.example.com", path: "/", want: "wild"},
		{name: "wildcard any depth", host: "a.b.example.com", path: "/", want: "wild"},
		{name: "longest wildcard wins", host: "paris.eu.example.com", path: "/", want: "wild-eu"},
		{name: "wildcard needs a label", host: "example.com", path: "/", want: "any-root-exact"},
		{name: "catch-all", host: "other.org", path: "/", want: "any-root-exact"},
		{name: "pseudo-header authority", host: "x.test", path: "/p", want: "any-authority"},
		{name: "catch-all miss", host: "other.org", path: "/nothing", want: "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			hdr := map[string]string{"Host": tc.host}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			code, _, body := get(t, nil, method, base+tc.path, hdr, "")
			got := body
			if code == http.StatusNotFound {
				got = "404"
			}
			if got != tc.want {
				t.Errorf("got %q (status %d), want %q", got, code, tc.want)
			}
		})
	}
}

func TestSingleLabelWildcards(t *testing.T) {
	cfg := simple(nil)
	cfg.RouteTables[0].SingleLabelWildcards = true
	cfg.RouteTables[0].VirtualHosts = []VirtualHost{
		{Name: "wild", Domains: []string{"*.foo.com"}, Routes: []Route{answer("wild", RouteMatch{})}},
		{Name: "any", Domains: []string{"*"}, Routes: []Route{answer("any", RouteMatch{})}},
	}
	_, base := start(t, cfg)
	for host, want := range map[string]string{"bar.foo.com": "wild", "baz.bar.foo.com": "any", "foo.com": "any"} {
		if _, _, body := get(t, nil, "GET", base+"/", map[string]string{"Host": host}, ""); body != want {
			t.Errorf("%s: got %q, want %q", host, body, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":            "/",
		"/":           "/",
		"/a/b":        "/a/b",
		"/a/./b":      "/a/b",
		"/a/../b":     "/b",
		"/a/..":       "/",
		"/..":         "/",
		"/../../a":    "/a",
		"/a/.":        "/a/",
		"/a//b":       "/a//b",
		"/a/b/":       "/a/b/",
		"/.hidden/x":  "/.hidden/x",
		"/a/..b":      "/a/..b",
		"/a/b/../../": "/",
		"a/b":         "/a/b",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"Example.COM:8080": "example.com",
		"example.com.":     "example.com",
		"[::1]:80":         "[::1]",
		"[::1]":            "[::1]",
		"::1":              "::1",
		"":                 "",
	} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// referenceSegmentPrefix is the Ingress rule written the slow way: split
// both into elements and compare.
func referenceSegmentPrefix(p, prefix string) bool {
	pe := strings.Split(strings.Trim(p, "/"), "/")
	xe := strings.Split(strings.Trim(prefix, "/"), "/")
	if strings.Trim(prefix, "/") == "" {
		return true
	}
	if len(xe) > len(pe) {
		return false
	}
	for i := range xe {
		if xe[i] != pe[i] {
			return false
		}
	}
	return true
}

func FuzzSegmentPrefix(f *testing.F) {
	for _, s := range [][2]string{{"/foo/bar", "/foo"}, {"/foobar", "/foo"}, {"/foo", "/foo/"}, {"/", "/"}, {"/a//b", "/a"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, prefix string) {
		if !strings.HasPrefix(p, "/") || !strings.HasPrefix(prefix, "/") ||
			strings.Contains(p, "//") || strings.Contains(prefix, "//") {
			return // the reference cannot tell empty elements apart
		}
		got := segmentPrefix(p, strings.TrimSuffix(prefix, "/"), false)
		if want := referenceSegmentPrefix(p, prefix); got != want {
			t.Fatalf("segmentPrefix(%q, %q) = %v, want %v", p, prefix, got, want)
		}
	})
}

func FuzzHostAndPath(f *testing.F) {
	for _, s := range []string{"example.com", "[::1]:80", "a.b.c:1", "x.", "/a/../b", "/./", ".."} {
		f.Add(s)
	}
	t := &hostTable{exact: map[string]*vhost{"a.com": {name: "a"}}, wildcard: map[string]*vhost{".b.com": {name: "b"}}}
	f.Fuzz(func(_ *testing.T, s string) {
		_ = t.lookup(s)
		c := cleanPath(s)
		if c == "" || c[0] != '/' {
			panic("cleanPath returned " + c)
		}
		if cleanPath(c) != c {
			panic("cleanPath not idempotent on " + s)
		}
		m := &pathMatcher{kind: PathSegmentPrefix, value: strings.TrimSuffix(s, "/")}
		m.match(c)
	})
}
