package content

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerTarGz returns a small, real gzipped tar layer.
func layerTarGz(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hashOf(t *testing.T, d digest.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.String())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// putImage writes a small image (layers, config, manifest) with the given
// manifest media type (OCI or Docker schema 2), using go-containerregistry's
// v1 types for the formats. It returns all its blob digests, manifest last,
// and the manifest's descriptor.
func putImage(t *testing.T, s *Store, mt types.MediaType, name string, nlayers int) ([]digest.Digest, v1.Descriptor) {
	t.Helper()
	layerMT, configMT := types.OCILayer, types.OCIConfigJSON
	if mt == types.DockerManifestSchema2 {
		layerMT, configMT = types.DockerLayer, types.DockerConfigJSON
	}
	var out []digest.Digest
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: mt}
	for i := range nlayers {
		b := layerTarGz(t, fmt.Sprintf("%s-%d.txt", name, i), name)
		d := writeBlob(t, s, b)
		out = append(out, d.Digest)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: layerMT, Size: d.Size, Digest: hashOf(t, d.Digest)})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, hashOf(t, d.Digest)) // not a real diffID; unused here
	}
	cd := writeBlob(t, s, mustJSON(t, cfg))
	out = append(out, cd.Digest)
	m.Config = v1.Descriptor{MediaType: configMT, Size: cd.Size, Digest: hashOf(t, cd.Digest)}
	md := writeBlob(t, s, mustJSON(t, m))
	out = append(out, md.Digest)
	return out, v1.Descriptor{MediaType: mt, Size: md.Size, Digest: hashOf(t, md.Digest), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, WithGCGracePeriod(time.Minute))

	// An OCI index holding one Docker schema 2 image and one OCI image.
	dockerBlobs, dockerDesc := putImage(t, s, types.DockerManifestSchema2, "docker", 2)
	ociBlobs, ociDesc := putImage(t, s, types.OCIManifestSchema1, "oci", 3)
	reachable := append(slices.Clone(dockerBlobs), ociBlobs...)
	idxDesc := writeBlob(t, s, mustJSON(t, v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{dockerDesc, ociDesc},
	}))
	idxDesc.MediaType = ocispec.MediaTypeImageIndex
	reachable = append(reachable, idxDesc.Digest)
	if err := s.SetRef(ctx, "example.com/app:latest", idxDesc); err != nil {
		t.Fatal(err)
	}
	// A second image referenced directly by an untyped descriptor
	// (media type sniffed).
	soloBlobs, _ := putImage(t, s, types.OCIManifestSchema1, "solo", 1)
	reachable = append(reachable, soloBlobs...)
	if err := s.SetRef(ctx, "example.com/solo:1", ocispec.Descriptor{Digest: soloBlobs[len(soloBlobs)-1]}); err != nil {
		t.Fatal(err)
	}

	oldGarbage := writeBlob(t, s, []byte("old unreferenced")).Digest
	youngGarbage := writeBlob(t, s, []byte("young unreferenced")).Digest
	for _, d := range append(slices.Clone(reachable), oldGarbage) {
		age(t, s, d, time.Hour)
	}

	// Ingests: one stale, one recent.
	for _, tc := range []struct {
		ref string
		age time.Duration
	}{{"stale", 48 * time.Hour}, {"recent", time.Hour}} {
		w, err := s.Writer(ctx, tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		w.Close()
		old := time.Now().Add(-tc.age)
		dir := s.ingestDir(tc.ref)
		for _, p := range []string{filepath.Join(dir, "data"), dir} {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}

	removed, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []digest.Digest{oldGarbage}) {
		t.Fatalf("removed %v, want only %s", removed, oldGarbage)
	}
	for _, d := range append(reachable, youngGarbage) {
		if _, err := s.Info(ctx, d); err != nil {
			t.Errorf("blob %s lost: %v", d, err)
		}
	}
	if _, err := os.Stat(s.ingestDir("stale")); !os.IsNotExist(err) {
		t.Errorf("stale ingest kept: %v", err)
	}
	if _, err := os.Stat(s.ingestDir("recent")); err != nil {
		t.Errorf("recent ingest removed: %v", err)
	}

	// Drop the index's ref: its whole graph goes, the solo image stays.
	if err := s.DeleteRef(ctx, "example.com/app:latest"); err != nil {
		t.Fatal(err)
	}
	age(t, s, youngGarbage, time.Hour)
	removed, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(reachable) - len(soloBlobs) + 1; len(removed) != want {
		t.Fatalf("second GC removed %d blobs, want %d", len(removed), want)
	}
	for _, d := range soloBlobs {
		if _, err := s.Info(ctx, d); err != nil {
			t.Errorf("solo blob %s lost: %v", d, err)
		}
	}
}

func TestGCRefusesCorruptManifest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	layer := writeBlob(t, s, []byte("layer"))
	age(t, s, layer.Digest, time.Hour)
	m := writeBlob(t, s, []byte(`{"schemaVersion":2,"layers":"not a list"}`))
	m.MediaType = ocispec.MediaTypeImageManifest
	if err := s.SetRef(ctx, "broken:latest", m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); !errors.Is(err, ErrInvalid) {
		t.Fatalf("GC = %v, want ErrInvalid", err)
	}
	if _, err := s.Info(ctx, layer.Digest); err != nil {
		t.Fatalf("GC deleted despite error: %v", err)
	}
}

func TestChildren(t *testing.T) {
	d1, d2 := digest.FromString("a"), digest.FromString("b")
	manifest := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d1.String() + `","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d2.String() + `","size":1}]}`)
	index := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1.String() + `","size":1}]}`)
	for _, tc := range []struct {
		name      string
		mediaType string
		data      []byte
		want      []digest.Digest
		wantErr   bool
	}{
		{"oci manifest", ocispec.MediaTypeImageManifest, manifest, []digest.Digest{d1, d2}, false},
		{"docker manifest", string(types.DockerManifestSchema2), manifest, []digest.Digest{d1, d2}, false},
		{"oci index", ocispec.MediaTypeImageIndex, index, []digest.Digest{d1}, false},
		{"docker list", string(types.DockerManifestList), index, []digest.Digest{d1}, false},
		{"sniffed manifest", "", manifest, []digest.Digest{d1, d2}, false},
		{"sniffed index", "", index, []digest.Digest{d1}, false},
		{"layer", ocispec.MediaTypeImageLayerGzip, []byte{0x1f, 0x8b}, nil, false},
		{"untyped binary", "", []byte{0, 1, 2}, nil, false},
		{"bad json", ocispec.MediaTypeImageManifest, []byte(`{`), nil, true},
		{"bad child digest", ocispec.MediaTypeImageIndex, []byte(`{"manifests":[{"digest":"sha256:../../x"}]}`), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kids, err := Children(tc.mediaType, tc.data)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			var got []digest.Digest
			for _, k := range kids {
				got = append(got, k.Digest)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("children = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzChildren(f *testing.F) {
	d := digest.FromString("x").String()
	m := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"` + d + `"},"layers":[{"digest":"` + d + `"}]}`
	idx := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":3}]}`
	for _, seed := range []string{m, idx, `{}`, `null`, `{"manifests":null}`, `{"config":{}}`, `{"layers":[{"digest":"sha256:.."}]}`} {
		f.Add("", []byte(seed))
		f.Add(ocispec.MediaTypeImageIndex, []byte(seed))
		f.Add(string(types.DockerManifestSchema2), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, mediaType string, data []byte) {
		kids, err := Children(mediaType, bytes.Clone(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		for _, k := range kids {
			if k.Digest.Validate() != nil {
				t.Fatalf("invalid child digest %q returned", k.Digest)
			}
		}
	})
}
