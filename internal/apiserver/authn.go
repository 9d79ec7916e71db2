package apiserver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// UserInfo is an authenticated caller.
type UserInfo struct {
	Name   string
	Groups []string
}

// Authenticator identifies the caller of a request. It returns ok=false
// when the request carries no credentials it recognises.
type Authenticator interface {
	Authenticate(r *http.Request) (user UserInfo, ok bool, err error)
}

// Authenticators tries each in order; the first that recognises the
// request wins.
type Authenticators []Authenticator

func (as Authenticators) Authenticate(r *http.Request) (UserInfo, bool, error) {
	for _, a := range as {
		u, ok, err := a.Authenticate(r)
		if err != nil || ok {
			return u, ok, err
		}
	}
	return UserInfo{}, false, nil
}

// ClientCertAuthenticator accepts TLS client certificates the server's
// TLS config verified against the cluster CA: CN is the user, O the groups.
type ClientCertAuthenticator struct{}

func (ClientCertAuthenticator) Authenticate(r *http.Request) (UserInfo, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return UserInfo{}, false, nil
	}
	c := r.TLS.VerifiedChains[0][0]
	return UserInfo{Name: c.Subject.CommonName, Groups: append([]string{"system:authenticated"}, c.Subject.Organization...)}, true, nil
}

// TokenAuthenticator accepts static bearer tokens (node join tokens now;
// service account tokens later plug in beside it).
type TokenAuthenticator map[string]UserInfo

func (t TokenAuthenticator) Authenticate(r *http.Request) (UserInfo, bool, error) {
	h := r.Header.Get("Authorization")
	token, found := strings.CutPrefix(h, "Bearer ")
	if !found || token == "" {
		return UserInfo{}, false, nil
	}
	for known, u := range t {
		if subtle.ConstantTimeCompare([]byte(known), []byte(token)) == 1 {
			return u, true, nil
		}
	}
	return UserInfo{}, false, apierrors.NewUnauthorized("invalid bearer token")
}

type userKey struct{}

func withUser(ctx context.Context, u UserInfo) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// userFrom returns the caller of a request's context.
func userFrom(ctx context.Context) UserInfo {
	u, _ := ctx.Value(userKey{}).(UserInfo)
	return u
}

// authenticate identifies the caller; anonymous requests are refused
// with 401.
func (s *Server) authenticate(r *http.Request) (UserInfo, error) {
	if s.cfg.Authenticator == nil {
		return UserInfo{}, apierrors.NewUnauthorized("Unauthorized")
	}
	u, ok, err := s.cfg.Authenticator.Authenticate(r)
	if err != nil {
		return UserInfo{}, err
	}
	if !ok {
		return UserInfo{}, apierrors.NewUnauthorized("Unauthorized")
	}
	return u, nil
}
