package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// FuzzCheck throws arbitrary request attributes, and arbitrary values in
// every policy field, at the engine: nothing may panic.
func FuzzCheck(f *testing.F) {
	f.Add("GET", "httpbin.foo", "/a/../b", "v1", sleepSA, []byte{10, 244, 0, 7}, uint16(8000), `{"groups":["g"]}`, "/admin*")
	f.Add("", "", "", "", "", []byte{}, uint16(0), `null`, "*")
	f.Add("POST", "[::1]:80", "//..//.", "\x00", "*", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint16(65535), `{"a":{"b":[1,true,null]}}`, "{**}{*}")
	f.Fuzz(func(t *testing.T, method, host, path, hdr, princ string, ipb []byte, port uint16, claimsJSON, value string) {
		vals := []string{value}
		pols := []Policy{
			{Name: "allow", Rules: []Rule{{
				From: []Source{{Principals: vals, NotPrincipals: vals, RequestPrincipals: vals, NotRequestPrincipals: vals,
					Namespaces: vals, ServiceAccounts: vals, TrustDomains: vals, IPBlocks: vals, RemoteIPBlocks: vals}},
				To: []Operation{{Hosts: vals, NotHosts: vals, Ports: vals, Methods: vals, Paths: vals, NotPaths: vals}},
			}}},
			{Name: "deny", Action: Deny, Rules: []Rule{{When: []Condition{
				{Key: "request.headers[x]", Values: vals},
				{Key: "request.auth.claims[a][b]", Values: vals},
				{Key: "request.auth.claims[" + value + "]", NotValues: vals},
				{Key: "source.namespace", Values: vals},
				{Key: "request.auth.audiences", Values: vals},
				{Key: "connection.sni", Values: vals},
			}}}},
			{Name: "allow2", Rules: []Rule{
				{To: []Operation{{Paths: vals}}},
				{From: []Source{{RequestPrincipals: vals}}},
				{When: []Condition{{Key: "request.auth.claims[a][b]", Values: vals}}},
				{When: []Condition{{Key: "request.headers[x]", Values: vals}}},
				{From: []Source{{Namespaces: vals}}},
				{From: []Source{{ServiceAccounts: vals}}},
				{From: []Source{{TrustDomains: vals}}},
			}},
		}
		r := &Request{Method: method, Host: host, Path: NormalizePath(path), Headers: http.Header{"X": {hdr}},
			SourcePrincipal: princ, DestinationPort: port, SNI: hdr}
		if a, ok := netip.AddrFromSlice(ipb); ok {
			r.SourceIP, r.RemoteIP, r.DestinationIP = a, a, a
		}
		var claims map[string]any
		if json.Unmarshal([]byte(claimsJSON), &claims) == nil {
			r.Auth = &Claims{Issuer: hdr, Subject: princ, Claims: claims, Audiences: []string{value}}
		}
		for i := range pols {
			e, err := New(Config{Policies: pols[i : i+1]}, nil)
			if err != nil {
				continue
			}
			_ = e.Check(r)
			_ = e.CheckConn(r)
		}
		for _, rule := range pols[2].Rules {
			e, err := New(Config{Policies: []Policy{{Name: "one", Rules: []Rule{rule}}}}, nil)
			if err != nil {
				continue
			}
			_ = e.Check(r)
			_ = e.CheckConn(r)
		}
	})
}

// FuzzAuthenticate hands arbitrary tokens and paths to request
// authentication and attribute extraction.
func FuzzAuthenticate(f *testing.F) {
	k := newRSAKey(f, "k")
	set := jwks(f, k)
	f.Add(token(f, k, stdClaims()), "/x")
	f.Add("a.b.c", "/%zz")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "//..")
	f.Fuzz(func(t *testing.T, tok, path string) {
		a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKS: set, FromParams: []string{"t"},
			OutputClaimToHeaders: []ClaimToHeader{{Header: "x-c", Claim: "a.b"}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		r.Header.Set("Authorization", "Bearer "+tok)
		_, _ = a.authenticate(context.Background(), r)
		_ = RequestFor(r, nil)
	})
}
