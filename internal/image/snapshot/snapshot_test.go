package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/errdefs"
)

type blobs map[digest.Digest][]byte

func (b blobs) Open(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	p, ok := b[d]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(p)), nil
}

func layerTar(t *testing.T, files map[string]string) ([]byte, ocispec.Descriptor, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(buf.Bytes())
	return buf.Bytes(), ocispec.Descriptor{Digest: d, Size: int64(buf.Len())}, d
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: unpacking layers and mounting overlayfs need root")
	}
}

func TestLowersAndMount(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	b1, d1, id1 := layerTar(t, map[string]string{"a": "1", "b": "lower"})
	b2, d2, id2 := layerTar(t, map[string]string{"b": "upper"})
	s := New(t.TempDir(), blobs{d1.Digest: b1, d2.Digest: b2})

	// Concurrent first use unpacks each layer once and agrees on the dirs.
	var wg sync.WaitGroup
	res := make([][]string, 4)
	errs := make([]error, 4)
	for i := range res {
		wg.Go(func() { res[i], errs[i] = s.Lowers(ctx, []ocispec.Descriptor{d1, d2}, []digest.Digest{id1, id2}) })
	}
	wg.Wait()
	for i := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if want := []string{s.Path(id2), s.Path(id1)}; res[i][0] != want[0] || res[i][1] != want[1] {
			t.Fatalf("lowers = %v, want %v", res[i], want)
		}
	}

	dir := t.TempDir()
	target := filepath.Join(dir, "rootfs")
	if err := Mount(target, res[0], filepath.Join(dir, "upper"), filepath.Join(dir, "work")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(target) })
	got, err := os.ReadFile(filepath.Join(target, "b"))
	if err != nil || string(got) != "upper" {
		t.Fatalf("b = %q, %v; want the top layer's", got, err)
	}
	if err := os.WriteFile(filepath.Join(target, "c"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "upper", "c")); err != nil {
		t.Fatalf("write did not land in upper: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Path(id1), "c")); err == nil {
		t.Fatal("write leaked into a shared layer")
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
}

func TestLowersRefuses(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	b1, d1, _ := layerTar(t, map[string]string{"a": "1"})
	s := New(t.TempDir(), blobs{d1.Digest: b1})
	cases := []struct {
		name    string
		diffIDs []digest.Digest
		want    error
	}{
		{"wrong diffID", []digest.Digest{digest.FromString("other")}, errdefs.ErrInvalid},
		{"malformed diffID", []digest.Digest{"sha256:xyz"}, errdefs.ErrInvalid},
		{"count mismatch", nil, errdefs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Lowers(ctx, []ocispec.Descriptor{d1}, c.diffIDs)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "sha256"))
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, err := s.Lowers(ctx, []ocispec.Descriptor{{Digest: digest.FromString("missing")}}, []digest.Digest{digest.FromString("x")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
}
