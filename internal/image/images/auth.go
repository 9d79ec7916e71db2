package images

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/content"
)

// ErrUnauthorized: the registry refused the credentials, or wants some and
// got none.
var ErrUnauthorized = errdefs.ErrUnauthorized

// DefaultConfigPath is where Docker keeps credentials:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DefaultConfigPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("docker config: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Login checks username and password against registry (a host[:port],
// optionally with a scheme; "" or docker.io means Docker Hub) and, if the
// registry accepts them, stores them in the docker config.json at
// configPath ("" means DefaultConfigPath) as `docker login` does. A
// registry that asks for no credentials accepts any, and they are stored
// all the same. Other keys of the file are kept.
func Login(ctx context.Context, registry, username, password, configPath string) error {
	if username == "" {
		return fmt.Errorf("login: username required: %w", content.ErrInvalid)
	}
	reg, key, err := registryKey(registry)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := checkLogin(ctx, reg, authn.FromConfig(authn.AuthConfig{Username: username, Password: password})); err != nil {
		return fmt.Errorf("login %s: %w", reg.Name(), err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
	err = updateConfig(configPath, func(auths map[string]json.RawMessage) bool {
		for _, k := range keyAliases(key) {
			delete(auths, k)
		}
		b, _ := json.Marshal(map[string]string{"auth": auth})
		auths[key] = b
		return true
	})
	if err != nil {
		return fmt.Errorf("login %s: %w", reg.Name(), err)
	}
	return nil
}

// Logout removes registry's credentials from the docker config.json at
// configPath ("" means DefaultConfigPath). Logging out of a registry one is
// not logged in to is not an error, as with Docker.
func Logout(registry, configPath string) error {
	reg, key, err := registryKey(registry)
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	err = updateConfig(configPath, func(auths map[string]json.RawMessage) bool {
		changed := false
		for _, k := range keyAliases(key) {
			if _, ok := auths[k]; ok {
				delete(auths, k)
				changed = true
			}
		}
		return changed
	})
	if err != nil {
		return fmt.Errorf("logout %s: %w", reg.Name(), err)
	}
	return nil
}

// registryKey parses registry and returns the key docker uses for it in
// config.json.
func registryKey(registry string) (name.Registry, string, error) {
	host := registry
	for _, p := range []string{"https://", "http://"} {
		host = strings.TrimPrefix(host, p)
	}
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		host = name.DefaultRegistry
	}
	reg, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil {
		return name.Registry{}, "", fmt.Errorf("registry %q: %v: %w", registry, err, content.ErrInvalid)
	}
	if reg.RegistryStr() == name.DefaultRegistry {
		return reg, authn.DefaultAuthKey, nil
	}
	return reg, reg.RegistryStr(), nil
}

// keyAliases are the spellings of key older clients wrote.
func keyAliases(key string) []string {
	if key == authn.DefaultAuthKey {
		return []string{key, name.DefaultRegistry, "docker.io", "https://" + name.DefaultRegistry}
	}
	return []string{key, "https://" + key, "http://" + key, "https://" + key + "/v1/", "http://" + key + "/v1/"}
}

// checkLogin pings /v2/ with auth: a bearer challenge makes the transport
// fetch a token (refused for bad credentials); a basic one sends them.
func checkLogin(ctx context.Context, reg name.Registry, auth authn.Authenticator) error {
	rt, err := transport.NewWithContext(ctx, reg, auth, http.DefaultTransport, nil)
	if err != nil {
		return remoteErr(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("%v: %w", err, content.ErrUnavailable)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("credentials refused (%s): %w", resp.Status, ErrUnauthorized)
	default:
		return fmt.Errorf("registry answered %s: %w", resp.Status, content.ErrUnavailable)
	}
}

// updateConfig reads the docker config at path, lets fn change its
// "auths", and writes it back atomically with mode 0600 if fn reports a
// change. Other keys are kept as they were.
func updateConfig(path string, fn func(auths map[string]json.RawMessage) bool) error {
	if path == "" {
		p, err := DefaultConfigPath()
		if err != nil {
			return err
		}
		path = p
	}
	doc := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("docker config: %w", err)
	case len(strings.TrimSpace(string(b))) > 0:
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("docker config %s: %v: %w", path, err, content.ErrInvalid)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := doc["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("docker config %s: auths: %v: %w", path, err, content.ErrInvalid)
		}
	}
	if !fn(auths) {
		return nil
	}
	ab, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	doc["auths"] = ab
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	return nil
}
