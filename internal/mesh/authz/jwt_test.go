package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// testKey is a signing key and its public JWK.
type testKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newRSAKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: k, alg: jose.RS256, kid: kid}
}

func newECKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: k, alg: jose.ES256, kid: kid}
}

// jwks is the JSON key set of keys' public halves.
func jwks(t testing.TB, keys ...testKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// token signs claims with k.
func token(t testing.TB, k testKey, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const testIssuer = "testing@secure.istio.io"

func stdClaims(mods ...func(map[string]any)) map[string]any {
	c := map[string]any{"iss": testIssuer, "sub": "user-1", "aud": []string{"bookstore"},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "groups": []string{"g1"}}
	for _, m := range mods {
		m(c)
	}
	return c
}

func set(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }

func bearer(tok string) *http.Request {
	r := httptest.NewRequest("GET", "http://httpbin.foo/headers", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestAuthenticate(t *testing.T) {
	rsaKey, ecKey, other := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1"), newRSAKey(t, "rsa-1")
	rule := JWTRule{Issuer: testIssuer, Audiences: []string{"bookstore", "shelf"}, JWKS: jwks(t, rsaKey, ecKey)}
	tests := []struct {
		name    string
		rules   []JWTRule
		req     func() *http.Request
		wantErr string // "" for success
		wantSub string // "" for no claims
	}{
		{"valid RSA", []JWTRule{rule}, func() *http.Request { return bearer(token(t, rsaKey, stdClaims())) }, "", "user-1"},
		{"valid EC", []JWTRule{rule}, func() *http.Request { return bearer(token(t, ecKey, stdClaims())) }, "", "user-1"},
		{"no token", []JWTRule{rule}, func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, "", ""},
		{"expired", []JWTRule{rule}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("exp", time.Now().Add(-time.Hour).Unix()))))
		}, msgExpired, ""},
		{"expired within clock skew", []JWTRule{rule}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("exp", time.Now().Add(-10*time.Second).Unix()))))
		}, "", "user-1"},
		{"not yet valid", []JWTRule{rule}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("nbf", time.Now().Add(time.Hour).Unix()))))
		}, msgNotYetValid, ""},
		{"wrong issuer", []JWTRule{rule}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("iss", "evil"))))
		}, msgUnknownIssuer, ""},
		{"wrong audience", []JWTRule{rule}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("aud", "other"))))
		}, msgBadAudience, ""},
		{"no audiences configured accepts any", []JWTRule{{Issuer: testIssuer, JWKS: rule.JWKS}}, func() *http.Request {
			return bearer(token(t, rsaKey, stdClaims(set("aud", "other"))))
		}, "", "user-1"},
		{"bad signature", []JWTRule{rule}, func() *http.Request { return bearer(token(t, other, stdClaims())) }, msgVerifyFails, ""},
		{"tampered payload", []JWTRule{rule}, func() *http.Request {
			parts := strings.Split(token(t, rsaKey, stdClaims()), ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuer + `","sub":"admin"}`))
			return bearer(strings.Join(parts, "."))
		}, msgVerifyFails, ""},
		{"malformed", []JWTRule{rule}, func() *http.Request { return bearer("not-a-jwt") }, msgMalformed, ""},
		{"alg none", []JWTRule{rule}, func() *http.Request {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
			p := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuer + `","sub":"x"}`))
			return bearer(h + "." + p + ".")
		}, msgVerifyFails, ""},
		{"query parameter access_token", []JWTRule{rule}, func() *http.Request {
			return httptest.NewRequest("GET", "/?access_token="+token(t, rsaKey, stdClaims()), nil)
		}, "", "user-1"},
		{"custom header and prefix", []JWTRule{{Issuer: testIssuer, JWKS: rule.JWKS,
			FromHeaders: []JWTHeader{{Name: "x-jwt-assertion", Prefix: "Token "}}}}, func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Jwt-Assertion", "Token "+token(t, rsaKey, stdClaims()))
			return r
		}, "", "user-1"},
		{"custom location ignores Authorization", []JWTRule{{Issuer: testIssuer, JWKS: rule.JWKS,
			FromParams: []string{"tok"}}}, func() *http.Request { return bearer(token(t, other, stdClaims())) }, "", ""},
		{"required but missing", []JWTRule{func() JWTRule { r := rule; r.Required = true; return r }()},
			func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, msgMissing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAuthenticator(tt.rules, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, aerr := a.authenticate(context.Background(), tt.req())
			switch {
			case tt.wantErr != "":
				if aerr == nil || aerr.Message != tt.wantErr {
					t.Fatalf("err = %v, want %q", aerr, tt.wantErr)
				}
			case aerr != nil:
				t.Fatalf("err = %v", aerr)
			case tt.wantSub == "" && c != nil:
				t.Fatalf("claims = %+v, want none", c)
			case tt.wantSub != "" && (c == nil || c.Subject != tt.wantSub || c.Principal() != testIssuer+"/"+tt.wantSub):
				t.Fatalf("claims = %+v, want subject %q", c, tt.wantSub)
			}
		})
	}
}

func TestAuthenticateHeaders(t *testing.T) {
	k := newRSAKey(t, "k")
	tok := token(t, k, stdClaims(set("nested", map[string]any{"role": "admin"})))
	tests := []struct {
		name     string
		rule     JWTRule
		wantAuth bool
	}{
		{"token removed by default", JWTRule{Issuer: testIssuer, JWKS: jwks(t, k), OutputPayloadToHeader: "x-jwt-payload",
			OutputClaimToHeaders: []ClaimToHeader{{Header: "x-role", Claim: "nested.role"}, {Header: "x-sub", Claim: "sub"}}}, false},
		{"forwardOriginalToken keeps it", JWTRule{Issuer: testIssuer, JWKS: jwks(t, k), ForwardOriginalToken: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAuthenticator([]JWTRule{tt.rule}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := bearer(tok)
			if _, aerr := a.authenticate(context.Background(), r); aerr != nil {
				t.Fatal(aerr)
			}
			if got := r.Header.Get("Authorization") != ""; got != tt.wantAuth {
				t.Errorf("Authorization kept = %v, want %v", got, tt.wantAuth)
			}
			if tt.rule.OutputPayloadToHeader != "" {
				b, err := base64.RawURLEncoding.DecodeString(r.Header.Get("x-jwt-payload"))
				if err != nil || !strings.Contains(string(b), `"sub":"user-1"`) {
					t.Errorf("payload header = %q (%v)", b, err)
				}
				if r.Header.Get("x-role") != "admin" || r.Header.Get("x-sub") != "user-1" {
					t.Errorf("claim headers: %v", r.Header)
				}
			}
		})
	}
}

func TestRemoteJWKS(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newECKey(t, "k2")
	var fetches atomic.Int32
	var current atomic.Value
	current.Store(jwks(t, k1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(current.Load().(string)))
	}))
	t.Cleanup(srv.Close)

	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKSURI: srv.URL + "/jwks"}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if fetches.Load() != 0 {
		t.Fatal("New fetched the key set; it must fetch lazily")
	}
	for range 3 {
		if _, aerr := a.authenticate(context.Background(), bearer(token(t, k1, stdClaims()))); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (cached)", n)
	}
	// Rotation: a token with a key ID the cache lacks refetches once
	// jwksMinRefetch has passed since the last try.
	current.Store(jwks(t, k1, k2))
	a.rules[0].keys.mu.Lock()
	a.rules[0].keys.tried = time.Now().Add(-2 * jwksMinRefetch)
	a.rules[0].keys.mu.Unlock()
	if _, aerr := a.authenticate(context.Background(), bearer(token(t, k2, stdClaims()))); aerr != nil {
		t.Fatalf("rotated key: %v", aerr)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
	// Unknown key IDs do not make every request refetch.
	stranger := newRSAKey(t, "k3")
	for range 3 {
		if _, aerr := a.authenticate(context.Background(), bearer(token(t, stranger, stdClaims()))); aerr == nil || aerr.Message != msgVerifyFails {
			t.Fatalf("unknown key: %v", aerr)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (refetches are rate limited)", n)
	}
}

func TestRemoteJWKSUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKSURI: srv.URL}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, aerr := a.authenticate(context.Background(), bearer(token(t, newRSAKey(t, "k"), stdClaims())))
	if aerr == nil || aerr.Message != msgJWKSFetchFailed {
		t.Fatalf("err = %v, want %q", aerr, msgJWKSFetchFailed)
	}
}

func TestRemoteJWKSSharedAcrossEngines(t *testing.T) {
	k := newRSAKey(t, "k")
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(jwks(t, k)))
	}))
	t.Cleanup(srv.Close)
	for range 3 {
		e, err := New(Config{JWT: []JWTRule{{Issuer: testIssuer, JWKSURI: srv.URL}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, aerr := e.jwt.authenticate(context.Background(), bearer(token(t, k, stdClaims()))); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1: a new Engine keeps the fetched keys", n)
	}
}

func TestCachedTokenStillExpires(t *testing.T) {
	k := newRSAKey(t, "k")
	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKS: jwks(t, k), ForwardOriginalToken: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, k, stdClaims(set("exp", time.Now().Add(time.Minute).Unix())))
	if _, aerr := a.authenticate(context.Background(), bearer(tok)); aerr != nil {
		t.Fatal(aerr)
	}
	a.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, aerr := a.authenticate(context.Background(), bearer(tok)); aerr == nil || aerr.Message != msgExpired {
		t.Fatalf("cached token an hour later: %v, want %q", aerr, msgExpired)
	}
}

func TestClientCannotForgeOutputHeaders(t *testing.T) {
	k := newRSAKey(t, "k")
	a, err := newAuthenticator([]JWTRule{{Issuer: testIssuer, JWKS: jwks(t, k), OutputPayloadToHeader: "x-jwt-payload",
		OutputClaimToHeaders: []ClaimToHeader{{Header: "x-user", Claim: "sub"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Jwt-Payload", base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)))
	r.Header.Set("X-User", "admin")
	if c, aerr := a.authenticate(context.Background(), r); c != nil || aerr != nil {
		t.Fatalf("no token: %v %v", c, aerr)
	}
	if r.Header.Get("X-Jwt-Payload") != "" || r.Header.Get("X-User") != "" {
		t.Errorf("forged output headers kept: %v", r.Header)
	}
}

func TestAuthenticateConcurrently(t *testing.T) {
	k := newECKey(t, "k")
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		time.Sleep(20 * time.Millisecond) // requests pile up behind the first fetch
		_, _ = w.Write([]byte(jwks(t, k)))
	}))
	t.Cleanup(srv.Close)
	e, err := New(Config{JWT: []JWTRule{{Issuer: testIssuer, JWKSURI: srv.URL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks := []string{token(t, k, stdClaims()), token(t, k, stdClaims(set("sub", "user-2")))}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 20 {
				if _, aerr := e.jwt.authenticate(context.Background(), bearer(toks[(g+i)%2])); aerr != nil {
					errs <- aerr
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}
