package authz

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"skiff.dev/skiff/internal/errdefs"
)

// req builds a request; mods adjust it.
func req(method, path string, mods ...func(*Request)) *Request {
	r := &Request{Method: method, Host: "httpbin.foo", Path: path, Headers: http.Header{},
		SourceIP: netip.MustParseAddr("10.244.0.7"), DestinationPort: 8000}
	r.RemoteIP = r.SourceIP
	for _, m := range mods {
		m(r)
	}
	return r
}

func principal(p string) func(*Request) { return func(r *Request) { r.SourcePrincipal = p } }
func header(k, v string) func(*Request) { return func(r *Request) { r.Headers.Set(k, v) } }
func ip(a string) func(*Request) {
	return func(r *Request) { r.SourceIP = netip.MustParseAddr(a); r.RemoteIP = r.SourceIP }
}
func port(p uint16) func(*Request)     { return func(r *Request) { r.DestinationPort = p } }
func host(h string) func(*Request)     { return func(r *Request) { r.Host = h } }
func jwt(c *Claims) func(*Request)     { return func(r *Request) { r.Auth = c } }
func remote(a string) func(*Request)   { return func(r *Request) { r.RemoteIP = netip.MustParseAddr(a) } }
func allowPolicy(rules ...Rule) Policy { return Policy{Namespace: "foo", Name: "allow", Rules: rules} }
func denyPolicy(rules ...Rule) Policy {
	return Policy{Namespace: "foo", Name: "deny", Action: Deny, Rules: rules}
}
func ops(o ...Operation) []Operation   { return o }
func srcs(s ...Source) []Source        { return s }
func conds(c ...Condition) []Condition { return c }
func claims(iss, sub string, kv ...any) *Claims {
	c := &Claims{Issuer: iss, Subject: sub, Claims: map[string]any{"iss": iss, "sub": sub}}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Claims[kv[i].(string)] = kv[i+1]
	}
	return c
}

const sleepSA = "cluster.local/ns/foo/sa/sleep"

func TestCheck(t *testing.T) {
	type probe struct {
		r     *Request
		allow bool
	}
	tests := []struct {
		name     string
		policies []Policy
		probes   []probe
	}{
		{"no policies allow everything", nil, []probe{
			{req("GET", "/"), true}, {req("DELETE", "/x"), true},
		}},
		{"allow GET only", []Policy{allowPolicy(Rule{To: ops(Operation{Methods: []string{"GET"}})})}, []probe{
			{req("GET", "/ip"), true}, {req("POST", "/ip"), false},
		}},
		{"deny POST", []Policy{denyPolicy(Rule{To: ops(Operation{Methods: []string{"POST"}})})}, []probe{
			{req("GET", "/"), true}, {req("POST", "/"), false},
		}},
		{"DENY beats ALLOW", []Policy{
			allowPolicy(Rule{}),
			denyPolicy(Rule{To: ops(Operation{Paths: []string{"/admin*"}})}),
		}, []probe{
			{req("GET", "/ip"), true}, {req("GET", "/admin/users"), false},
		}},
		{"allow-nothing: ALLOW without rules", []Policy{{Namespace: "foo", Name: "allow-nothing"}}, []probe{
			{req("GET", "/"), false},
		}},
		{"DENY without rules denies nothing", []Policy{{Namespace: "foo", Name: "d", Action: Deny}}, []probe{
			{req("GET", "/"), true},
		}},
		{"allow-all rules [{}]", []Policy{{Namespace: "foo", Name: "allow-nothing"}, allowPolicy(Rule{})}, []probe{
			{req("GET", "/"), true},
		}},
		{"deny-all rules [{}]", []Policy{allowPolicy(Rule{}), denyPolicy(Rule{})}, []probe{
			{req("GET", "/"), false},
		}},
		{"AUDIT decides nothing", []Policy{{Namespace: "foo", Name: "a", Action: Audit, Rules: []Rule{{}}}}, []probe{
			{req("GET", "/"), true},
		}},
		{"namespaces", []Policy{allowPolicy(Rule{From: srcs(Source{Namespaces: []string{"foo"}})})}, []probe{
			{req("GET", "/", principal(sleepSA)), true},
			{req("GET", "/", principal("cluster.local/ns/bar/sa/sleep")), false},
			{req("GET", "/"), false}, // plaintext: no identity
		}},
		{"namespaces with wildcard and notNamespaces", []Policy{allowPolicy(Rule{From: srcs(Source{
			Namespaces: []string{"team-*"}, NotNamespaces: []string{"team-x"}})})}, []probe{
			{req("GET", "/", principal("cluster.local/ns/team-a/sa/default")), true},
			{req("GET", "/", principal("cluster.local/ns/team-x/sa/default")), false},
		}},
		{"principals exact, prefix, suffix, any", []Policy{allowPolicy(
			Rule{From: srcs(Source{Principals: []string{sleepSA}}), To: ops(Operation{Paths: []string{"/exact"}})},
			Rule{From: srcs(Source{Principals: []string{"cluster.local/ns/bar/*"}}), To: ops(Operation{Paths: []string{"/prefix"}})},
			Rule{From: srcs(Source{Principals: []string{"*/sa/admin"}}), To: ops(Operation{Paths: []string{"/suffix"}})},
			Rule{From: srcs(Source{Principals: []string{"*"}}), To: ops(Operation{Paths: []string{"/any"}})},
		)}, []probe{
			{req("GET", "/exact", principal(sleepSA)), true},
			{req("GET", "/exact", principal("cluster.local/ns/foo/sa/other")), false},
			{req("GET", "/prefix", principal("cluster.local/ns/bar/sa/x")), true},
			{req("GET", "/suffix", principal("cluster.local/ns/baz/sa/admin")), true},
			{req("GET", "/suffix", principal("cluster.local/ns/baz/sa/user")), false},
			{req("GET", "/any", principal("cluster.local/ns/baz/sa/user")), true},
			{req("GET", "/any"), false},
		}},
		{"notPrincipals * denies plaintext", []Policy{denyPolicy(Rule{From: srcs(Source{NotPrincipals: []string{"*"}})})}, []probe{
			{req("GET", "/"), false}, {req("GET", "/", principal(sleepSA)), true},
		}},
		{"serviceAccounts and trustDomains", []Policy{allowPolicy(
			Rule{From: srcs(Source{ServiceAccounts: []string{"sleep", "bar/curl"}})},
			Rule{From: srcs(Source{TrustDomains: []string{"other.td"}})},
		)}, []probe{
			{req("GET", "/", principal(sleepSA)), true},
			{req("GET", "/", principal("cluster.local/ns/bar/sa/curl")), true},
			{req("GET", "/", principal("cluster.local/ns/bar/sa/sleep")), false},
			{req("GET", "/", principal("other.td/ns/x/sa/y")), true},
		}},
		{"ipBlocks and notIpBlocks", []Policy{allowPolicy(Rule{From: srcs(Source{
			IPBlocks: []string{"10.244.0.0/24", "192.0.2.1"}, NotIPBlocks: []string{"10.244.0.66"}})})}, []probe{
			{req("GET", "/"), true},
			{req("GET", "/", ip("192.0.2.1")), true},
			{req("GET", "/", ip("10.244.0.66")), false},
			{req("GET", "/", ip("10.245.0.1")), false},
			{req("GET", "/", ip("::ffff:10.244.0.9")), true},
		}},
		{"remoteIpBlocks", []Policy{denyPolicy(Rule{From: srcs(Source{RemoteIPBlocks: []string{"203.0.113.0/24"}})})}, []probe{
			{req("GET", "/"), true},
			{req("GET", "/", remote("203.0.113.9")), false},
		}},
		{"paths exact, prefix, suffix, presence, templates", []Policy{allowPolicy(Rule{To: ops(Operation{
			Paths: []string{"/headers", "/api/*", "*.png", "/users/{*}/profile", "/files/{**}"}})})}, []probe{
			{req("GET", "/headers"), true},
			{req("GET", "/headers/x"), false},
			{req("GET", "/api/v1/x"), true},
			{req("GET", "/img/a.png"), true},
			{req("GET", "/users/42/profile"), true},
			{req("GET", "/users/4/2/profile"), false},
			{req("GET", "/files/a/b/c"), true},
			{req("GET", "/other"), false},
		}},
		{"notPaths", []Policy{allowPolicy(Rule{To: ops(Operation{NotPaths: []string{"/private*"}})})}, []probe{
			{req("GET", "/public"), true}, {req("GET", "/private/x"), false},
		}},
		{"hosts case-insensitive, ports", []Policy{allowPolicy(Rule{To: ops(Operation{
			Hosts: []string{"httpbin.foo", "*.example.com"}, Ports: []string{"8000"}})})}, []probe{
			{req("GET", "/"), true},
			{req("GET", "/", host("HTTPBIN.foo")), true},
			{req("GET", "/", host("a.Example.com")), true},
			{req("GET", "/", host("evil.org")), false},
			{req("GET", "/", port(9000)), false},
		}},
		{"from and to are ANDed, lists ORed", []Policy{allowPolicy(Rule{
			From: srcs(Source{Principals: []string{sleepSA}}, Source{IPBlocks: []string{"192.0.2.0/24"}}),
			To:   ops(Operation{Methods: []string{"GET"}}, Operation{Paths: []string{"/post"}}),
		})}, []probe{
			{req("GET", "/x", principal(sleepSA)), true},
			{req("POST", "/post", ip("192.0.2.5")), true},
			{req("POST", "/x", ip("192.0.2.5")), false},
			{req("GET", "/x"), false},
		}},
		{"when headers", []Policy{allowPolicy(Rule{When: conds(
			Condition{Key: "request.headers[version]", Values: []string{"v1", "v2"}},
			Condition{Key: "request.headers[X-Token]", Values: []string{"*"}},
		)})}, []probe{
			{req("GET", "/", header("Version", "v1"), header("x-token", "")), true},
			{req("GET", "/", header("Version", "v3"), header("x-token", "a")), false},
			{req("GET", "/", header("Version", "v2")), false},
		}},
		{"when source and destination", []Policy{allowPolicy(Rule{When: conds(
			Condition{Key: "source.ip", Values: []string{"10.244.0.0/16"}},
			Condition{Key: "source.namespace", Values: []string{"foo"}},
			Condition{Key: "source.principal", NotValues: []string{"*/sa/blocked"}},
			Condition{Key: "destination.port", Values: []string{"8000", "8080"}},
			Condition{Key: "source.serviceAccount", NotValues: []string{"evil", "bar/evil"}},
		)})}, []probe{
			{req("GET", "/", principal("cluster.local/ns/foo/sa/evil")), false},
			{req("GET", "/", principal(sleepSA)), true},
			{req("GET", "/", principal("cluster.local/ns/foo/sa/blocked")), false},
			{req("GET", "/", principal(sleepSA), port(9090)), false},
		}},
		{"requestPrincipals", []Policy{allowPolicy(
			Rule{From: srcs(Source{RequestPrincipals: []string{"*"}}), To: ops(Operation{Paths: []string{"/any"}})},
			Rule{From: srcs(Source{RequestPrincipals: []string{"testing@secure.istio.io/testing@secure.istio.io"}})},
			Rule{From: srcs(Source{RequestPrincipals: []string{"https://accounts.example.com/*"}}), To: ops(Operation{Paths: []string{"/iss"}})},
		)}, []probe{
			{req("GET", "/any", jwt(claims("a", "b"))), true},
			{req("GET", "/any"), false},
			{req("GET", "/x", jwt(claims("testing@secure.istio.io", "testing@secure.istio.io"))), true},
			{req("GET", "/x", jwt(claims("testing@secure.istio.io", "other"))), false},
			{req("GET", "/iss", jwt(claims("https://accounts.example.com", "u1"))), true},
			{req("GET", "/iss", jwt(claims("https://evil.example.com", "u1"))), false},
		}},
		{"JWT claims, nested, lists, audiences, presenter", []Policy{allowPolicy(Rule{When: conds(
			Condition{Key: "request.auth.claims[groups]", Values: []string{"group1"}},
			Condition{Key: "request.auth.claims[nested][key1]", Values: []string{"value*"}},
			Condition{Key: "request.auth.audiences", Values: []string{"bookstore"}},
			Condition{Key: "request.auth.presenter", Values: []string{"web"}},
		)})}, []probe{
			{req("GET", "/", jwt(func() *Claims {
				c := claims("iss", "sub", "groups", []any{"group0", "group1"}, "nested", map[string]any{"key1": "value1"})
				c.Audiences, c.Presenter = []string{"x", "bookstore"}, "web"
				return c
			}())), true},
			{req("GET", "/", jwt(func() *Claims {
				c := claims("iss", "sub", "groups", "group2", "nested", map[string]any{"key1": "value1"})
				c.Audiences, c.Presenter = []string{"bookstore"}, "web"
				return c
			}())), false},
			{req("GET", "/"), false},
		}},
		{"scope claim is space delimited", []Policy{allowPolicy(Rule{When: conds(
			Condition{Key: "request.auth.claims[scope]", Values: []string{"write"}})})}, []probe{
			{req("GET", "/", jwt(claims("i", "s", "scope", "read write"))), true},
			{req("GET", "/", jwt(claims("i", "s", "scope", "read"))), false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Policies: tt.policies}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range tt.probes {
				d := e.Check(p.r)
				if d.Allowed != p.allow {
					t.Errorf("probe %d (%s %s principal=%q ip=%s): allowed=%v, want %v (%s)",
						i, p.r.Method, p.r.Path, p.r.SourcePrincipal, p.r.SourceIP, d.Allowed, p.allow, d.Reason())
				}
			}
		})
	}
}

func TestCheckReportsDecider(t *testing.T) {
	e, err := New(Config{Policies: []Policy{
		{Namespace: "foo", Name: "audit", Action: Audit, Rules: []Rule{{}}},
		denyPolicy(Rule{To: ops(Operation{Methods: []string{"PUT"}})}, Rule{To: ops(Operation{Methods: []string{"POST"}})}),
		allowPolicy(Rule{To: ops(Operation{Methods: []string{"GET"}})}),
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Check(req("POST", "/"))
	if d.Allowed || d.Policy != "foo/deny" || d.Rule != 1 || len(d.Audited) != 1 {
		t.Errorf("POST: %+v", d)
	}
	d = e.Check(req("HEAD", "/"))
	if d.Allowed || d.Policy != "" || d.Reason() != "no ALLOW policy matched" {
		t.Errorf("HEAD: %+v", d)
	}
	d = e.Check(req("GET", "/"))
	if !d.Allowed || d.Policy != "foo/allow" || d.Rule != 0 {
		t.Errorf("GET: %+v", d)
	}
}

func TestDryRunIsNotEnforced(t *testing.T) {
	p := denyPolicy(Rule{})
	p.DryRun = true
	e, err := New(Config{Policies: []Policy{p}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Check(req("GET", "/")); !d.Allowed || len(d.DryRun) != 1 {
		t.Errorf("dry-run deny: %+v", d)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"CUSTOM", Config{Policies: []Policy{{Name: "c", Action: Custom, Rules: []Rule{{}}}}}},
		{"unknown action", Config{Policies: []Policy{{Name: "c", Action: "MAYBE"}}}},
		{"bad ip block", Config{Policies: []Policy{allowPolicy(Rule{From: srcs(Source{IPBlocks: []string{"10.0.0.0/33"}})})}}},
		{"bad port", Config{Policies: []Policy{allowPolicy(Rule{To: ops(Operation{Ports: []string{"http"}})})}}},
		{"unknown when key", Config{Policies: []Policy{allowPolicy(Rule{When: conds(Condition{Key: "request.color", Values: []string{"x"}})})}}},
		{"experimental key", Config{Policies: []Policy{allowPolicy(Rule{When: conds(Condition{Key: "experimental.envoy.filters.a[b]", Values: []string{"x"}})})}}},
		{"header without name", Config{Policies: []Policy{allowPolicy(Rule{When: conds(Condition{Key: "request.headers[]", Values: []string{"x"}})})}}},
		{"when without values", Config{Policies: []Policy{allowPolicy(Rule{When: conds(Condition{Key: "source.ip"})})}}},
		{"jwt without issuer", Config{JWT: []JWTRule{{JWKS: `{"keys":[]}`}}}},
		{"jwt without keys", Config{JWT: []JWTRule{{Issuer: "i"}}}},
		{"jwt bad jwks", Config{JWT: []JWTRule{{Issuer: "i", JWKS: `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`}}}},
		{"jwt bad uri", Config{JWT: []JWTRule{{Issuer: "i", JWKSURI: "file:///etc/passwd"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			t.Log(err)
		})
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/a/b", "/a/b"},
		{"/a/./b", "/a/b"},
		{"/a/../admin", "/admin"},
		{"/../../admin", "/admin"},
		{"a/b", "/a/b"},
		{"/a/.", "/a/"},
		{"/a/b/..", "/a/"},
		{"/a//b", "/a//b"},
	}
	for _, tt := range tests {
		if got := NormalizePath(tt.in); got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRemoteIP(t *testing.T) {
	peer := netip.MustParseAddr("10.244.0.7")
	tests := []struct {
		name string
		xff  []string
		want string
	}{
		{"none", nil, "10.244.0.7"},
		{"only our append", []string{"10.244.0.7"}, "10.244.0.7"},
		{"client and our append", []string{"203.0.113.5, 10.244.0.7"}, "203.0.113.5"},
		{"last hop wins", []string{"198.51.100.1, 203.0.113.5", "10.244.0.7"}, "203.0.113.5"},
		{"garbage", []string{"nonsense, 10.244.0.7"}, "10.244.0.7"},
	}
	for _, tt := range tests {
		if got := remoteIP(tt.xff, peer); got.String() != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestCheckConn(t *testing.T) {
	conn := func(mods ...func(*Request)) *Request { return req("", "", mods...) }
	tests := []struct {
		name     string
		policies []Policy
		r        *Request
		allow    bool
	}{
		{"ALLOW rule with HTTP-only fields is left out", []Policy{allowPolicy(Rule{
			From: srcs(Source{Principals: []string{sleepSA}}), To: ops(Operation{Methods: []string{"GET"}})})},
			conn(principal(sleepSA)), false},
		{"ALLOW rule with TCP fields applies", []Policy{allowPolicy(Rule{
			From: srcs(Source{Principals: []string{sleepSA}}), To: ops(Operation{Ports: []string{"8000"}})})},
			conn(principal(sleepSA)), true},
		{"DENY rule loses HTTP-only fields: denies more", []Policy{denyPolicy(Rule{
			From: srcs(Source{Namespaces: []string{"foo"}}), To: ops(Operation{Paths: []string{"/admin"}})})},
			conn(principal(sleepSA)), false},
		{"DENY on requestPrincipals only denies every connection", []Policy{denyPolicy(Rule{
			From: srcs(Source{NotRequestPrincipals: []string{"*"}})})}, conn(), false},
		{"DENY by header condition becomes unconditional", []Policy{denyPolicy(Rule{
			To:   ops(Operation{Ports: []string{"8000"}}),
			When: conds(Condition{Key: "request.headers[x]", Values: []string{"y"}})})}, conn(), false},
		{"DENY on another port", []Policy{denyPolicy(Rule{To: ops(Operation{Ports: []string{"9000"}})})}, conn(), true},
		{"HTTP attributes of the request are ignored", []Policy{allowPolicy(Rule{To: ops(Operation{Methods: []string{"GET"}})})},
			req("GET", "/"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Policies: tt.policies}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := e.CheckConn(tt.r); d.Allowed != tt.allow {
				t.Errorf("allowed = %v, want %v (%s)", d.Allowed, tt.allow, d.Reason())
			}
		})
	}
}
