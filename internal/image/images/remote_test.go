package images

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/content"
)

// testRegistry serves an in-memory registry, wrapped by wrap if not nil,
// and returns its host:port (loopback, so plain HTTP).
func testRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// isolateDockerConfig points Docker's config lookups (DOCKER_CONFIG, HOME,
// podman's auth files) at a fresh directory and returns the config.json
// path there, which does not exist yet.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(dir, "none.json"))
	return filepath.Join(dir, "docker", "config.json")
}

// TestPushPullRoundTrip pushes an image made by skiff build and pulls it
// into a fresh store: same image ID, same manifest digest; a second pull
// fetches no layer.
func TestPushPullRoundTrip(t *testing.T) {
	isolateDockerConfig(t)
	ctx := context.Background()
	host := testRegistry(t, nil)
	src := newStore(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := host + "/skiff/hello:v1"
	df := "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello\"]\n"
	id, err := build.New(src, nil).Build(ctx, build.Options{ContextDir: dir, DockerfileBytes: []byte(df), Tags: []string{ref}})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	pushed, err := New(src).Push(ctx, ref, PushOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	local, err := src.Ref(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pushed != local.Digest.String() {
		t.Fatalf("pushed digest %s, local manifest %s", pushed, local.Digest)
	}
	if !strings.Contains(progress.String(), pushed) {
		t.Errorf("push progress lacks the digest:\n%s", progress.String())
	}

	dst := newStore(t)
	svc := New(dst)
	progress.Reset()
	got, err := svc.Pull(ctx, ref, PullOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if got != id.String() {
		t.Fatalf("pulled image ID %s, built %s", got, id)
	}
	pulled, err := dst.Ref(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != local.Digest {
		t.Fatalf("pulled manifest %s, local %s", pulled.Digest, local.Digest)
	}
	info, err := svc.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id.String() || len(info.RootFS.Layers) != 1 {
		t.Fatalf("inspect after pull = %+v", info)
	}
	if !strings.Contains(progress.String(), "Pull complete") {
		t.Errorf("first pull progress:\n%s", progress.String())
	}

	progress.Reset()
	if _, err := svc.Pull(ctx, ref, PullOptions{Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(progress.String(), "Pull complete") || !strings.Contains(progress.String(), "Already exists") {
		t.Errorf("second pull fetched layers again:\n%s", progress.String())
	}
}

func TestPushByIDRefused(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	id := putImage(t, store, testImage(t, 1, nil, time.Unix(0, 0)), "local/x:1")
	_, err := New(store).Push(ctx, id, PushOptions{})
	if !errors.Is(err, content.ErrInvalid) {
		t.Fatalf("push by ID: err = %v, want ErrInvalid", err)
	}
}

// TestPullIndexPicksPlatform pulls from a two-platform index: the option's
// platform, else the service's, and a clear not-found for a third.
func TestPullIndexPicksPlatform(t *testing.T) {
	isolateDockerConfig(t)
	ctx := context.Background()
	host := testRegistry(t, nil)
	amd := testImage(t, 1, map[string]string{"arch": "amd64"}, time.Unix(0, 0))
	arm := testImage(t, 1, map[string]string{"arch": "arm64"}, time.Unix(0, 0))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := host + "/multi/app:1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	amdID, _ := amd.ConfigName()
	armID, _ := arm.ConfigName()
	armMan, _ := arm.Digest()

	tests := []struct {
		name    string
		svcPlat ocispec.Platform
		opt     ocispec.Platform
		want    v1.Hash
		wantErr error
	}{
		{"option", ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"}, armID, nil},
		{"service default", ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{}, amdID, nil},
		{"missing", ocispec.Platform{OS: "linux", Architecture: "s390x"}, ocispec.Platform{}, v1.Hash{}, content.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			id, err := New(store, WithPlatform(tc.svcPlat)).Pull(ctx, ref, PullOptions{Platform: tc.opt})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if refs, _ := store.Refs(ctx); len(refs) != 0 {
					t.Fatalf("failed pull tagged %v", refs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.want.String() {
				t.Fatalf("pulled %s, want %s", id, tc.want)
			}
			if tc.want == armID {
				d, err := store.Ref(ctx, ref)
				if err != nil || d.Digest.String() != armMan.String() {
					t.Fatalf("ref = %v, %v; want the arm64 manifest %s", d, err, armMan)
				}
			}
		})
	}
}

// corruptBlob serves other bytes of the same length for one blob.
func corruptBlob(dgst string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+dgst) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			for i := range b {
				b[i] ^= 0xff
			}
			w.Header().Set("Content-Length", rec.Header().Get("Content-Length"))
			w.Header().Set("Docker-Content-Digest", dgst)
			w.WriteHeader(rec.Code)
			_, _ = w.Write(b)
		})
	}
}

// TestPullCorruptLayer: a registry that serves wrong bytes for a layer
// makes the pull fail with a digest error, and nothing is tagged.
func TestPullCorruptLayer(t *testing.T) {
	isolateDockerConfig(t)
	ctx := context.Background()
	img := testImage(t, 2, nil, time.Unix(0, 0))
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := layers[1].Digest()
	host := testRegistry(t, corruptBlob(bad.String()))
	src := newStore(t)
	ref := host + "/corrupt/app:1"
	putImage(t, src, img, ref)
	if _, err := New(src).Push(ctx, ref, PushOptions{}); err != nil {
		t.Fatal(err)
	}

	dst := newStore(t)
	_, err = New(dst).Pull(ctx, ref, PullOptions{})
	if !errors.Is(err, content.ErrInvalid) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("pull of a corrupt layer: err = %v, want ErrInvalid naming %s", err, bad)
	}
	t.Logf("corrupt layer: %v", err)
	if refs, _ := dst.Refs(ctx); len(refs) != 0 {
		t.Fatalf("failed pull tagged %v", refs)
	}
	if _, err := dst.Info(ctx, digest.Digest(bad.String())); !errors.Is(err, content.ErrNotFound) {
		t.Fatalf("corrupt layer in the store: %v", err)
	}
}
