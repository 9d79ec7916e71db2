package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchEngine has the shape of a busy namespace: a DENY, three ALLOW
// policies with principals, paths and a header condition.
func benchEngine(b *testing.B) *Engine {
	e, err := New(Config{Policies: []Policy{
		denyPolicy(Rule{To: ops(Operation{Paths: []string{"/admin*", "/debug/{**}"}})}),
		{Namespace: "foo", Name: "a1", Rules: []Rule{{From: srcs(Source{Namespaces: []string{"bar", "baz"}})}}},
		{Namespace: "foo", Name: "a2", Rules: []Rule{{From: srcs(Source{Principals: []string{"cluster.local/ns/x/sa/y"}}),
			To: ops(Operation{Methods: []string{"GET", "HEAD"}, Paths: []string{"/api/*"}})}}},
		{Namespace: "foo", Name: "a3", Rules: []Rule{{From: srcs(Source{Principals: []string{sleepSA}}),
			To:   ops(Operation{Methods: []string{"GET"}, Paths: []string{"/api/*"}}),
			When: conds(Condition{Key: "request.headers[x-version]", Values: []string{"v1", "v2"}})}}},
	}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkCheck(b *testing.B) {
	e := benchEngine(b)
	r := req("GET", "/api/items", principal(sleepSA), header("X-Version", "v2"))
	b.ReportAllocs()
	for b.Loop() {
		if !e.Check(r).Allowed {
			b.Fatal("denied")
		}
	}
}

func BenchmarkAuthenticateRS256(b *testing.B) {
	k := newRSAKey(b, "k")
	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKS: jwks(b, k), ForwardOriginalToken: true}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"Authorization": {"Bearer " + token(b, k, stdClaims())}}
	b.ReportAllocs()
	for b.Loop() {
		if _, aerr := a.authenticate(context.Background(), r); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

func BenchmarkAuthenticateRS256Uncached(b *testing.B) {
	k := newRSAKey(b, "k")
	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKS: jwks(b, k), ForwardOriginalToken: true}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"Authorization": {"Bearer " + token(b, k, stdClaims())}}
	b.ReportAllocs()
	for b.Loop() {
		a.cache.m = nil
		if _, aerr := a.authenticate(context.Background(), r); aerr != nil {
			b.Fatal(aerr)
		}
	}
}
