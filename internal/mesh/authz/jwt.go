package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"skiff.dev/skiff/internal/errdefs"
)

// Envoy's texts for the ways a token fails (its jwt_authn filter's
// local replies), which Istio users search for.
const (
	msgVerifyFails     = "Jwt verification fails"
	msgExpired         = "Jwt is expired"
	msgNotYetValid     = "Jwt not yet valid"
	msgUnknownIssuer   = "Jwt issuer is not configured"
	msgBadAudience     = "Audiences in Jwt are not allowed"
	msgMalformed       = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
	msgJWKSFetchFailed = "Jwks remote fetch is failed"
	msgMissing         = "Jwt is missing"
)

// clockSkew is Envoy's default allowance on exp and nbf.
const clockSkew = 60 * time.Second

// signatureAlgorithms are the algorithms a token may use (Envoy's list
// without HMAC, whose shared secrets have no place in a mesh config).
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AuthError is a token that failed; Message is Envoy's text, sent to
// the client with 401.
type AuthError struct {
	Message string
	Err     error
}

func (e *AuthError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *AuthError) Unwrap() error { return e.Err }

// location is one place a token is looked for.
type location struct {
	header, prefix string
	param          string
	cookie         string
}

func (l location) String() string {
	switch {
	case l.header != "":
		return "header " + l.header
	case l.param != "":
		return "query parameter " + l.param
	}
	return "cookie " + l.cookie
}

// extract returns the token at l, if any.
func (l location) extract(r *http.Request) string {
	switch {
	case l.header != "":
		for _, v := range r.Header.Values(l.header) {
			if l.prefix == "" {
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
				continue
			}
			if len(v) >= len(l.prefix) && strings.EqualFold(v[:len(l.prefix)], l.prefix) {
				if t := strings.TrimSpace(v[len(l.prefix):]); t != "" {
					return t
				}
			}
		}
	case l.param != "":
		if r.URL != nil {
			return r.URL.Query().Get(l.param)
		}
	case l.cookie != "":
		if c, err := r.Cookie(l.cookie); err == nil {
			return c.Value
		}
	}
	return ""
}

type jwtRule struct {
	JWTRule
	keys *keySource
}

// verifiedCache remembers tokens that verified (Envoy's jwt_cache): a
// client sends the same token on every request, and an RSA check costs
// far more than the rest of the request's policy work. Time bounds are
// checked again on every use.
type verifiedCache struct {
	mu sync.Mutex
	m  map[string]*cachedToken
}

// maxCachedTokens bounds verifiedCache; when full it starts over.
const maxCachedTokens = 512

type cachedToken struct {
	claims   *Claims
	rule     *jwtRule
	payload  string
	exp, nbf time.Time // zero when absent
}

func (c *verifiedCache) get(raw string) *cachedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[raw]
}

func (c *verifiedCache) put(raw string, t *cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = make(map[string]*cachedToken)
	}
	c.m[raw] = t
}

// checkTimes applies exp and nbf (with Envoy's clock skew).
func checkTimes(now, exp, nbf time.Time) *AuthError {
	if !exp.IsZero() && now.After(exp.Add(clockSkew)) {
		return &AuthError{Message: msgExpired}
	}
	if !nbf.IsZero() && now.Add(clockSkew).Before(nbf) {
		return &AuthError{Message: msgNotYetValid}
	}
	return nil
}

// authenticator validates a request's tokens against the jwtRules.
type authenticator struct {
	cache verifiedCache
	rules []*jwtRule
	// locs are the distinct locations, each with the rules that use it.
	locs []locRules
	now  func() time.Time
}

type locRules struct {
	loc   location
	rules []*jwtRule
}

// ValidateJWTRule reports whether New can use r (nil if it can).
func ValidateJWTRule(r JWTRule) error {
	_, err := compileJWTRule(r, nil)
	return err
}

func compileJWTRule(r JWTRule, log *slog.Logger) (*jwtRule, error) {
	if r.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	out := &jwtRule{JWTRule: r}
	switch {
	case r.JWKS != "":
		set, err := parseJWKS([]byte(r.JWKS))
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		out.keys = &keySource{inline: set}
	case r.JWKSURI != "":
		if !strings.HasPrefix(r.JWKSURI, "http://") && !strings.HasPrefix(r.JWKSURI, "https://") {
			return nil, fmt.Errorf("jwksUri %q: want an http or https URL", r.JWKSURI)
		}
		out.keys = newRemoteKeys(r.JWKSURI, log)
	default:
		return nil, errors.New("jwks or jwksUri is required")
	}
	for _, h := range r.FromHeaders {
		if h.Name == "" {
			return nil, errors.New("fromHeaders: name is required")
		}
	}
	return out, nil
}

func (r *jwtRule) locations() []location {
	var out []location
	for _, h := range r.FromHeaders {
		out = append(out, location{header: http.CanonicalHeaderKey(h.Name), prefix: h.Prefix})
	}
	for _, p := range r.FromParams {
		out = append(out, location{param: p})
	}
	for _, c := range r.FromCookies {
		out = append(out, location{cookie: c})
	}
	if len(out) == 0 {
		out = []location{{header: "Authorization", prefix: "Bearer "}, {param: "access_token"}}
	}
	return out
}

func newAuthenticator(rules []JWTRule, log *slog.Logger) (*authenticator, error) {
	a := &authenticator{now: time.Now}
	for i, r := range rules {
		jr, err := compileJWTRule(r, log)
		if err != nil {
			return nil, fmt.Errorf("jwt rule %d (issuer %q): %w: %w", i, r.Issuer, errdefs.ErrInvalid, err)
		}
		a.rules = append(a.rules, jr)
	next:
		for _, l := range jr.locations() {
			for j := range a.locs {
				if a.locs[j].loc == l {
					a.locs[j].rules = append(a.locs[j].rules, jr)
					continue next
				}
			}
			a.locs = append(a.locs, locRules{loc: l, rules: []*jwtRule{jr}})
		}
	}
	return a, nil
}

// authenticate finds the request's tokens and verifies each: no token
// gives (nil, nil); any token that fails gives its failure (Istio: a
// missing token is fine, an invalid one is not); a Required rule
// without a verified token gives "Jwt is missing". Otherwise the first
// verified token's claims are returned, the headers of verified tokens
// are removed unless their rule forwards them, and the rules' output
// headers are set.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request) (*Claims, *AuthError) {
	if a == nil || len(a.rules) == 0 {
		return nil, nil
	}
	// Output headers only ever come from a verified token: a client's
	// own are removed first (Envoy sanitises them too).
	for _, rule := range a.rules {
		if rule.OutputPayloadToHeader != "" {
			r.Header.Del(rule.OutputPayloadToHeader)
		}
		for _, ch := range rule.OutputClaimToHeaders {
			if ch.Header != "" {
				r.Header.Del(ch.Header)
			}
		}
	}
	type verifiedToken struct {
		claims  *Claims
		rule    *jwtRule
		loc     location
		payload string
	}
	var ok []verifiedToken
	for _, lr := range a.locs {
		raw := lr.loc.extract(r)
		if raw == "" {
			continue
		}
		c, rule, payload, err := a.verify(ctx, raw, lr.rules)
		if err != nil {
			return nil, err
		}
		ok = append(ok, verifiedToken{c, rule, lr.loc, payload})
	}
	for _, rule := range a.rules {
		if !rule.Required {
			continue
		}
		found := false
		for _, v := range ok {
			found = found || v.rule == rule
		}
		if !found {
			return nil, &AuthError{Message: msgMissing, Err: fmt.Errorf("issuer %q", rule.Issuer)}
		}
	}
	if len(ok) == 0 {
		return nil, nil
	}
	for _, v := range ok {
		if !v.rule.ForwardOriginalToken && v.loc.header != "" {
			r.Header.Del(v.loc.header)
		}
		if v.rule.OutputPayloadToHeader != "" {
			r.Header.Set(v.rule.OutputPayloadToHeader, v.payload)
		}
		for _, ch := range v.rule.OutputClaimToHeaders {
			if val, found := claimString(v.claims.Claims, ch.Claim); found && ch.Header != "" {
				r.Header.Set(ch.Header, val)
			}
		}
	}
	return ok[0].claims, nil
}

func claimString(claims map[string]any, name string) (string, bool) {
	switch v := claimAt(claims, strings.Split(name, ".")).(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// verify checks raw against the rules of its location.
func (a *authenticator) verify(ctx context.Context, raw string, rules []*jwtRule) (*Claims, *jwtRule, string, *AuthError) {
	if strings.Count(raw, ".") != 2 {
		return nil, nil, "", &AuthError{Message: msgMalformed}
	}
	if ct := a.cache.get(raw); ct != nil && slices.Contains(rules, ct.rule) {
		if err := checkTimes(a.now(), ct.exp, ct.nbf); err != nil {
			return nil, nil, "", err
		}
		return ct.claims, ct.rule, ct.payload, nil
	}
	tok, err := josejwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return nil, nil, "", &AuthError{Message: msgVerifyFails, Err: err}
	}
	var std josejwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&std); err != nil {
		return nil, nil, "", &AuthError{Message: msgVerifyFails, Err: err}
	}
	var rule *jwtRule
	for _, r := range rules {
		if r.Issuer == std.Issuer {
			rule = r
			break
		}
	}
	if rule == nil {
		return nil, nil, "", &AuthError{Message: msgUnknownIssuer, Err: fmt.Errorf("issuer %q", std.Issuer)}
	}
	hdr := tok.Headers[0]
	all := map[string]any{}
	verified := false
	for attempt := 0; attempt < 2 && !verified; attempt++ {
		set, err := rule.keys.get(ctx, attempt == 1)
		if err != nil {
			return nil, nil, "", &AuthError{Message: msgJWKSFetchFailed, Err: err}
		}
		keys := set.Keys
		if hdr.KeyID != "" {
			keys = set.Key(hdr.KeyID)
		}
		for _, k := range keys {
			if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
				continue
			}
			if k.Use != "" && k.Use != "sig" {
				continue
			}
			if err := tok.Claims(k.Key, &all); err == nil {
				verified = true
				break
			}
		}
		if verified || rule.keys.inline != nil || (hdr.KeyID != "" && len(keys) > 0) {
			break // a refetch only helps with a key it has not seen
		}
	}
	if !verified {
		return nil, nil, "", &AuthError{Message: msgVerifyFails, Err: errors.New("no key verifies the signature")}
	}
	var exp, nbf time.Time
	if std.Expiry != nil {
		exp = std.Expiry.Time()
	}
	if std.NotBefore != nil {
		nbf = std.NotBefore.Time()
	}
	if err := checkTimes(a.now(), exp, nbf); err != nil {
		return nil, nil, "", err
	}
	if len(rule.Audiences) > 0 {
		ok := false
		for _, want := range rule.Audiences {
			if std.Audience.Contains(want) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, nil, "", &AuthError{Message: msgBadAudience}
		}
	}
	c := &Claims{Issuer: std.Issuer, Subject: std.Subject, Audiences: []string(std.Audience), Claims: all,
		SpaceDelimited: rule.SpaceDelimitedClaims}
	if azp, ok := all["azp"].(string); ok {
		c.Presenter = azp
	}
	payload := raw[strings.IndexByte(raw, '.')+1 : strings.LastIndexByte(raw, '.')]
	a.cache.put(raw, &cachedToken{claims: c, rule: rule, payload: payload, exp: exp, nbf: nbf})
	return c, rule, payload, nil
}
