package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// jwksRefresh is how long fetched keys are used before they are
	// fetched again (Istio's default refresh interval).
	jwksRefresh = 20 * time.Minute
	// jwksMinRefetch bounds refetches for unknown key IDs, and retries
	// after a failed fetch.
	jwksMinRefetch = 30 * time.Second
	// jwksTimeout bounds one fetch.
	jwksTimeout = 5 * time.Second
	// maxJWKSSize bounds a fetched key set.
	maxJWKSSize = 1 << 20
)

// keySource is a rule's key set: inline, or fetched from a URI lazily
// and cached.
type keySource struct {
	inline *jose.JSONWebKeySet

	uri    string
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex // held during a fetch: one fetch at a time
	keys    *jose.JSONWebKeySet
	fetched time.Time // of keys
	tried   time.Time // last attempt
	lastErr error
}

// remoteKeys holds the process's remote key sets by URI, so that the
// Engine of a new Config (the sidecar gets one whenever its document
// changes) keeps the keys the previous one fetched.
var remoteKeys sync.Map // string → *keySource

// newRemoteKeys returns the key source of uri, shared process-wide. No
// I/O: keys are fetched when a token first needs them.
func newRemoteKeys(uri string, log *slog.Logger) *keySource {
	if ks, ok := remoteKeys.Load(uri); ok {
		return ks.(*keySource)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ks, _ := remoteKeys.LoadOrStore(uri, &keySource{uri: uri, client: &http.Client{Timeout: jwksTimeout}, log: log})
	return ks.(*keySource)
}

// get returns the keys; refresh asks for a fetch (a token names a key
// the cached set does not have), which happens at most every
// jwksMinRefetch. Stale keys are kept when a refresh fails.
func (k *keySource) get(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error) {
	if k.inline != nil {
		return k.inline, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	due := k.keys == nil || now.Sub(k.fetched) > jwksRefresh || refresh
	if !due {
		return k.keys, nil
	}
	if now.Sub(k.tried) < jwksMinRefetch && !k.tried.IsZero() {
		if k.keys != nil {
			return k.keys, nil
		}
		return nil, k.lastErr
	}
	k.tried = now
	set, err := k.fetch(ctx)
	if err != nil {
		k.lastErr = err
		k.log.Warn("jwks fetch failed", "uri", k.uri, "err", err)
		if k.keys != nil {
			return k.keys, nil
		}
		return nil, err
	}
	k.keys, k.fetched, k.lastErr = set, now, nil
	return set, nil
}

func (k *keySource) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: status %s", k.uri, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSSize {
		return nil, fmt.Errorf("jwks %s: larger than %d bytes", k.uri, maxJWKSSize)
	}
	return parseJWKS(b)
}

// parseJWKS parses a JWK set, keeping the public keys it can use
// (private parts are dropped; symmetric keys are refused).
func parseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("invalid JWK set: %w", err)
	}
	out := &jose.JSONWebKeySet{}
	for _, key := range set.Keys {
		if _, sym := key.Key.([]byte); sym {
			continue
		}
		pub := key.Public()
		if !pub.Valid() {
			continue
		}
		out.Keys = append(out.Keys, pub)
	}
	if len(out.Keys) == 0 {
		return nil, errors.New("JWK set has no usable public key")
	}
	return out, nil
}
