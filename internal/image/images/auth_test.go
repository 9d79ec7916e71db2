package images

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// basicAuth lets through only requests with user:pass, answering others
// with a Basic challenge, as a registry behind basic auth does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="skiff-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func readConfig(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return doc
}

func authEntry(doc map[string]any, key string) (string, bool) {
	auths, _ := doc["auths"].(map[string]any)
	e, ok := auths[key].(map[string]any)
	if !ok {
		return "", false
	}
	s, _ := e["auth"].(string)
	return s, true
}

// TestLoginPushPullLogout: without credentials a push to a registry behind
// basic auth fails as unauthorized; a wrong password does not log in; after
// login push and pull work with the default keychain; after logout they
// fail again; the config keeps unrelated keys and is private.
func TestLoginPushPullLogout(t *testing.T) {
	cfgPath := isolateDockerConfig(t)
	ctx := context.Background()
	host := testRegistry(t, basicAuth("alice", "s3cret"))
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	orig := `{"psFormat":"table {{.ID}}","auths":{"other.example":{"auth":"eDp5"}},"proxies":{"default":{"httpProxy":""}}}`
	if err := os.WriteFile(cfgPath, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}

	src := newStore(t)
	ref := host + "/private/app:1"
	id := putImage(t, src, testImage(t, 1, nil, time.Unix(0, 0)), ref)

	_, err := New(src).Push(ctx, ref, PushOptions{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("push without credentials: err = %v, want ErrUnauthorized", err)
	}
	t.Logf("push without credentials: %v", err)
	if err := Login(ctx, host, "alice", "wrong", ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("login with a wrong password: err = %v, want ErrUnauthorized", err)
	}
	if _, ok := authEntry(readConfig(t, cfgPath), host); ok {
		t.Fatal("a refused login was stored")
	}

	if err := Login(ctx, "http://"+host+"/", "alice", "s3cret", ""); err != nil {
		t.Fatal(err)
	}
	doc := readConfig(t, cfgPath)
	got, ok := authEntry(doc, host)
	if want := base64.StdEncoding.EncodeToString([]byte("alice:s3cret")); !ok || got != want {
		t.Fatalf("auths[%s].auth = %q, want %q", host, got, want)
	}
	if _, ok := authEntry(doc, "other.example"); !ok || doc["psFormat"] != "table {{.ID}}" || doc["proxies"] == nil {
		t.Fatalf("login dropped unrelated keys: %v", doc)
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json mode = %v, %v; want 0600", fi.Mode(), err)
	}

	if _, err := New(src).Push(ctx, ref, PushOptions{}); err != nil {
		t.Fatalf("push after login: %v", err)
	}
	pulled, err := New(newStore(t)).Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if pulled != id {
		t.Fatalf("pulled %s, pushed %s", pulled, id)
	}

	if err := Logout(host, ""); err != nil {
		t.Fatal(err)
	}
	doc = readConfig(t, cfgPath)
	if _, ok := authEntry(doc, host); ok {
		t.Fatal("logout left the credentials")
	}
	if _, ok := authEntry(doc, "other.example"); !ok || doc["psFormat"] != "table {{.ID}}" {
		t.Fatalf("logout dropped unrelated keys: %v", doc)
	}
	if err := Logout(host, ""); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	if _, err := New(newStore(t)).Pull(ctx, ref, PullOptions{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("pull after logout: err = %v, want ErrUnauthorized", err)
	}
}

// TestLoginOpenRegistry: a registry that wants no credentials accepts
// them; they are stored at the explicit path, which is created.
func TestLoginOpenRegistry(t *testing.T) {
	isolateDockerConfig(t)
	host := testRegistry(t, nil)
	path := filepath.Join(t.TempDir(), "sub", "config.json")
	if err := Login(context.Background(), host, "bob", "pw", path); err != nil {
		t.Fatal(err)
	}
	if _, ok := authEntry(readConfig(t, path), host); !ok {
		t.Fatal("credentials not stored")
	}
	if err := Logout(host, path); err != nil {
		t.Fatal(err)
	}
	if _, ok := authEntry(readConfig(t, path), host); ok {
		t.Fatal("credentials not removed")
	}
}

func TestRegistryKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "https://index.docker.io/v1/"},
		{"docker.io", "https://index.docker.io/v1/"},
		{"https://index.docker.io/v1/", "https://index.docker.io/v1/"},
		{"localhost:5000", "localhost:5000"},
		{"https://registry.example.com/v2/", "registry.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, got, err := registryKey(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("registryKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
