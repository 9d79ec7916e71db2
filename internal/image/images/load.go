package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/content"
)

// Load reads a docker-archive (manifest.json, as `docker save` and
// `podman save` write) or an OCI archive (a tar of an OCI image layout with
// index.json) from r into the store and tags the images as the archive
// names them. It returns the names it tagged, normalised. Every blob is
// verified (layer digests, and for docker-archives the layers' diffIDs
// against the config) before anything is tagged: on error nothing is.
// Images the archive does not name are refused: Skiff keeps no untagged
// images.
func (s *Service) Load(ctx context.Context, r io.Reader) ([]string, error) {
	f, err := os.CreateTemp("", "skiff-load-*.tar")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return nil, fmt.Errorf("load: reading archive: %w", err)
	}
	entries, err := indexTar(f)
	if err != nil {
		return nil, fmt.Errorf("load: not a tar archive: %v: %w", err, content.ErrInvalid)
	}
	var tags map[string]ocispec.Descriptor
	switch {
	case entries["index.json"] != nil:
		tags, err = s.loadOCI(ctx, f, entries)
	case entries["manifest.json"] != nil:
		tags, err = s.loadDocker(ctx, f.Name())
	default:
		err = fmt.Errorf("neither manifest.json (docker-archive) nor index.json (OCI archive) found: %w", content.ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var loaded []string
	for n, desc := range tags {
		if err := s.store.SetRef(ctx, n, desc); err != nil {
			return loaded, fmt.Errorf("load: tag %s: %w", n, err)
		}
		loaded = append(loaded, n)
	}
	slices.Sort(loaded)
	return loaded, nil
}

// tarEntry locates a regular file's data inside the spooled archive.
type tarEntry struct{ off, size int64 }

type countingReader struct {
	f *os.File
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	n, err := c.f.Seek(off, whence)
	c.n = n
	return n, err
}

func indexTar(f *os.File) (map[string]*tarEntry, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cr := &countingReader{f: f}
	tr := tar.NewReader(cr)
	out := map[string]*tarEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		out[path.Clean(strings.TrimPrefix(hdr.Name, "./"))] = &tarEntry{off: cr.n, size: hdr.Size}
	}
	if len(out) == 0 {
		return nil, errors.New("no files")
	}
	return out, nil
}

// loadDocker imports a docker-archive through go-containerregistry.
func (s *Service) loadDocker(ctx context.Context, archive string) (map[string]ocispec.Descriptor, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(archive) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, content.ErrInvalid)
	}
	tags := map[string]ocispec.Descriptor{}
	for i, d := range m {
		if len(d.RepoTags) == 0 {
			return nil, fmt.Errorf("image %d (%s) has no name in manifest.json: %w", i, d.Config, content.ErrInvalid)
		}
		var sel *name.Tag
		if len(m) > 1 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("image %d: name %q: %v: %w", i, d.RepoTags[0], err, content.ErrInvalid)
			}
			sel = &t
		}
		img, err := tarball.Image(opener, sel)
		if err != nil {
			return nil, fmt.Errorf("image %d (%s): %v: %w", i, d.RepoTags[0], err, content.ErrInvalid)
		}
		desc, err := s.importImage(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %d (%s): %w", i, d.RepoTags[0], err)
		}
		for _, t := range d.RepoTags {
			n, err := normalize(t)
			if err != nil {
				return nil, fmt.Errorf("image %d: %w", i, err)
			}
			tags[n] = desc
		}
	}
	return tags, nil
}

// importImage writes img's config, layers and a fresh OCI manifest into the
// store, keeping the config bytes (hence the image ID) and the layer blobs
// as they are, after checking every layer against its diffID.
func (s *Service) importImage(ctx context.Context, img v1.Image) (ocispec.Descriptor, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %v: %w", err, content.ErrInvalid)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %v: %w", err, content.ErrInvalid)
	}
	layers, err := img.Layers()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("layers: %v: %w", err, content.ErrInvalid)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return ocispec.Descriptor{}, fmt.Errorf("%d layers but %d diff_ids in config: %w", len(layers), len(cfg.RootFS.DiffIDs), content.ErrInvalid)
	}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Layers:    []ocispec.Descriptor{},
	}
	for i, l := range layers {
		if err := checkDiffID(l, cfg.RootFS.DiffIDs[i]); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %w", i, err)
		}
		d, err := l.Digest()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %v: %w", i, err, content.ErrInvalid)
		}
		size, err := l.Size()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %v: %w", i, err, content.ErrInvalid)
		}
		mt, err := l.MediaType()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %v: %w", i, err, content.ErrInvalid)
		}
		rc, err := l.Compressed()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %v: %w", i, err, content.ErrInvalid)
		}
		desc, err := s.store.WriteBlob(ctx, rc, size, digest.Digest(d.String()))
		rc.Close()
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %w", i, err)
		}
		desc.MediaType = ociLayerType(mt)
		man.Layers = append(man.Layers, desc)
	}
	cdesc, err := s.store.WriteBlob(ctx, strings.NewReader(string(rawCfg)), int64(len(rawCfg)), digest.FromBytes(rawCfg))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	man.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cdesc.Digest, Size: cdesc.Size}
	mb, err := json.Marshal(man)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	mdesc, err := s.store.WriteBlob(ctx, strings.NewReader(string(mb)), int64(len(mb)), digest.FromBytes(mb))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	mdesc.MediaType = ocispec.MediaTypeImageManifest
	return mdesc, nil
}

func checkDiffID(l v1.Layer, want digest.Digest) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("%v: %w", err, content.ErrInvalid)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Errorf("reading: %v: %w", err, content.ErrInvalid)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if got != want.String() {
		return fmt.Errorf("content digest %s does not match diff_id %s (corrupt layer): %w", got, want, content.ErrInvalid)
	}
	return nil
}

func ociLayerType(mt types.MediaType) string {
	switch mt {
	case types.DockerLayer, "":
		return ocispec.MediaTypeImageLayerGzip
	case types.DockerUncompressedLayer:
		return ocispec.MediaTypeImageLayer
	case types.DockerForeignLayer:
		return ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck // what a foreign layer is
	}
	return string(mt)
}

// loadOCI copies the graph of every manifest index.json lists into the
// store, verifying every blob's digest, and returns the names its
// annotations give.
func (s *Service) loadOCI(ctx context.Context, f *os.File, entries map[string]*tarEntry) (map[string]ocispec.Descriptor, error) {
	read := func(d digest.Digest, limit int64) (io.Reader, int64, error) {
		if err := d.Validate(); err != nil {
			return nil, 0, fmt.Errorf("digest %q: %v: %w", d, err, content.ErrInvalid)
		}
		e := entries[path.Join("blobs", d.Algorithm().String(), d.Encoded())]
		if e == nil {
			return nil, 0, fmt.Errorf("blob %s missing from archive: %w", d, content.ErrInvalid)
		}
		if limit > 0 && e.size > limit {
			return nil, 0, fmt.Errorf("blob %s too large (%d bytes): %w", d, e.size, content.ErrInvalid)
		}
		return io.NewSectionReader(f, e.off, e.size), e.size, nil
	}
	ie := entries["index.json"]
	if ie.size > content.MaxManifestSize {
		return nil, fmt.Errorf("index.json too large: %w", content.ErrInvalid)
	}
	ib, err := io.ReadAll(io.NewSectionReader(f, ie.off, ie.size))
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(ib, &index); err != nil {
		return nil, fmt.Errorf("index.json: %v: %w", err, content.ErrInvalid)
	}
	var copyBlob func(desc ocispec.Descriptor, depth int) error
	copyBlob = func(desc ocispec.Descriptor, depth int) error {
		if depth > 4 {
			return fmt.Errorf("indexes nested too deep: %w", content.ErrInvalid)
		}
		isManifest := depth == 0 || desc.MediaType == ocispec.MediaTypeImageManifest || desc.MediaType == ocispec.MediaTypeImageIndex ||
			desc.MediaType == mediaDockerMan || desc.MediaType == mediaDockerList
		var limit int64
		if isManifest {
			limit = content.MaxManifestSize
		}
		r, size, err := read(desc.Digest, limit)
		if err != nil {
			return err
		}
		if desc.Size != 0 && desc.Size != size {
			return fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", desc.Digest, size, desc.Size, content.ErrInvalid)
		}
		if !isManifest {
			_, err := s.store.WriteBlob(ctx, r, size, desc.Digest)
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if digest.FromBytes(b) != desc.Digest {
			return fmt.Errorf("manifest %s: digest mismatch: %w", desc.Digest, content.ErrInvalid)
		}
		children, err := content.Children(desc.MediaType, b)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		for _, c := range children {
			if err := copyBlob(c, depth+1); err != nil {
				return err
			}
		}
		_, err = s.store.WriteBlob(ctx, strings.NewReader(string(b)), size, desc.Digest)
		return err
	}
	tags := map[string]ocispec.Descriptor{}
	for i, m := range index.Manifests {
		var names []string
		if n := m.Annotations["io.containerd.image.name"]; n != "" {
			names = append(names, n)
		} else if n := m.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(n, ":/@") {
			names = append(names, n)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("image %d (%s) has no name in index.json: %w", i, m.Digest, content.ErrInvalid)
		}
		if err := copyBlob(m, 0); err != nil {
			return nil, fmt.Errorf("image %d (%s): %w", i, names[0], err)
		}
		root := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
		for _, n := range names {
			nn, err := normalize(n)
			if err != nil {
				return nil, fmt.Errorf("image %d: %w", i, err)
			}
			tags[nn] = root
		}
	}
	return tags, nil
}
