package podruntime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/images"
)

// Credential is one registry login, from an imagePullSecret.
type Credential struct {
	// Registry is the key of the login in a docker config: a host
	// ("registry.example:5000", "docker.io"), optionally with a scheme and
	// a repository path prefix ("https://index.docker.io/v1/",
	// "example.com/team").
	Registry string
	// Username and Password, or Auth (base64 of "user:password"), or
	// IdentityToken.
	Username, Password, Auth, IdentityToken string
}

// EnsureImage makes ref present according to the pull policy and returns
// the image ID. IfNotPresent (and "") pulls only when the image is
// missing, Always pulls every time, Never only looks. auth are the pod's
// registry logins; the first whose Registry matches the image is used,
// else the node's docker config, else none.
//
// Errors carry the kubelet's wording and a kind: an image missing with
// Never is errdefs.ErrNotFound; a failed pull keeps the registry's
// message and its kind (ErrNotFound for an unknown repository or tag,
// ErrUnauthorized for refused credentials), ErrUnavailable otherwise (a
// registry that does not answer). Concurrent calls for one reference pull
// once.
func (m *Manager) EnsureImage(ctx context.Context, ref string, policy corev1.PullPolicy, auth []Credential) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("no image given: %w", errdefs.ErrInvalid)
	}
	switch policy {
	case "", corev1.PullIfNotPresent, corev1.PullNever, corev1.PullAlways:
	default:
		return "", fmt.Errorf("image pull policy %q: %w", policy, errdefs.ErrInvalid)
	}
	unlock := m.pulls.lock(ref)
	defer unlock()
	if policy != corev1.PullAlways {
		img, err := m.opts.Images.Resolve(ctx, ref)
		if err == nil {
			return img.ID.String(), nil
		}
		if !errors.Is(err, errdefs.ErrNotFound) {
			return "", fmt.Errorf("image %q: %w", ref, err)
		}
		if policy == corev1.PullNever {
			return "", fmt.Errorf("container image %q is not present with pull policy of Never: %w", ref, errdefs.ErrNotFound)
		}
	}
	keychain := authn.NewMultiKeychain(credentials(auth), authn.DefaultKeychain)
	id, err := m.opts.Images.Pull(ctx, ref, images.PullOptions{Keychain: keychain})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrUnauthorized) &&
			!errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errdefs.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
		}
		return "", fmt.Errorf("failed to pull image %q: %w", ref, err)
	}
	m.log.Info("image pulled", "image", ref, "id", id)
	return id, nil
}

// credentials is a keychain over a pod's logins.
type credentials []Credential

// Resolve returns the first login whose registry (and path prefix, if it
// has one) matches the resource, or anonymous.
func (cs credentials) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, c := range cs {
		if credentialMatches(c.Registry, r.RegistryStr(), r.String()) {
			return authn.FromConfig(authn.AuthConfig{
				Username: c.Username, Password: c.Password, Auth: c.Auth, IdentityToken: c.IdentityToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}

// credentialMatches matches a docker config key against a registry host
// and the full resource ("host/repository").
func credentialMatches(key, registry, resource string) bool {
	key = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://"), "/")
	host, prefix, _ := strings.Cut(key, "/")
	if prefix == "v1" || prefix == "v2" {
		prefix = ""
	}
	if dockerHub(host) != dockerHub(registry) {
		return false
	}
	if prefix == "" {
		return true
	}
	_, repo, _ := strings.Cut(resource, "/")
	return repo == prefix || strings.HasPrefix(repo, prefix+"/")
}

// dockerHub folds Docker Hub's names into one.
func dockerHub(host string) string {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "index.docker.io"
	}
	return host
}
