package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"skiff.dev/skiff/internal/image/content"
)

// Save writes the images named by names (names or IDs; an ID saves the
// image under all its names) to w as a docker-archive tarball
// (manifest.json and repositories, as `docker save` writes), which
// `docker load` and `podman load` read. Layers are written as stored.
func (s *Service) Save(ctx context.Context, w io.Writer, names ...string) error {
	if len(names) == 0 {
		return fmt.Errorf("save: no images given: %w", content.ErrInvalid)
	}
	adapters := map[digest.Digest]v1.Image{}
	refs := map[name.Reference]v1.Image{}
	for _, arg := range names {
		im, n, _, err := s.lookup(ctx, arg)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		img, ok := adapters[im.id]
		if !ok {
			if img, err = partial.CompressedToImage(&storeImage{ctx: ctx, s: s.store, im: im}); err != nil {
				return fmt.Errorf("save %s: %w", arg, err)
			}
			adapters[im.id] = img
		}
		tags := []string{n}
		if n == "" {
			tags = im.names
		}
		for _, t := range tags {
			tag, err := name.NewTag(t)
			if err != nil {
				return fmt.Errorf("save %s: name %q: %v: %w", arg, t, err, content.ErrInvalid)
			}
			refs[tag] = img
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(tarball.MultiRefWrite(refs, pw))
	}()
	err := restream(pr, w)
	pr.CloseWithError(err) // unblocks the writer if restream stopped early
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// restream copies the tarball go-containerregistry writes, rewriting
// manifest.json with familiar names in a stable order and adding the
// legacy repositories file.
func restream(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	var manifest tarball.Manifest
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if hdr.Name == "manifest.json" {
			b, err := io.ReadAll(io.LimitReader(tr, content.MaxManifestSize))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &manifest); err != nil {
				return fmt.Errorf("manifest.json: %w", err)
			}
			continue // written last, rewritten
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	repos := map[string]map[string]string{}
	for i := range manifest {
		d := &manifest[i]
		for j, t := range d.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return fmt.Errorf("name %q: %w", t, err)
			}
			d.RepoTags[j] = reference.FamiliarString(named)
			if tagged, ok := named.(reference.Tagged); ok {
				repo := reference.FamiliarName(named)
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				id := d.Config
				if len(d.Layers) > 0 {
					id = d.Layers[len(d.Layers)-1]
				}
				repos[repo][tagged.Tag()] = trimExt(id)
			}
		}
		slices.Sort(d.RepoTags)
	}
	slices.SortFunc(manifest, func(a, b tarball.Descriptor) int {
		return cmpFirst(a.RepoTags, b.RepoTags, a.Config, b.Config)
	})
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", manifest}, {"repositories", repos}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

func trimExt(s string) string {
	for i := range len(s) {
		if s[i] == '.' {
			return s[:i]
		}
	}
	return s
}

func cmpFirst(a, b []string, ca, cb string) int {
	fa, fb := ca, cb
	if len(a) > 0 {
		fa = a[0]
	}
	if len(b) > 0 {
		fb = b[0]
	}
	if fa < fb {
		return -1
	} else if fa > fb {
		return 1
	}
	return 0
}

// storeImage is a partial.CompressedImageCore over an image in the store.
// It holds a ctx only for the duration of one Save.
type storeImage struct {
	ctx context.Context
	s   *content.Store
	im  *image
	raw []byte
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.im.rawConfig, nil }

func (i *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.im.manifest.MediaType), nil
}

func (i *storeImage) RawManifest() ([]byte, error) {
	if i.raw == nil {
		b, err := i.s.ReadBlob(i.ctx, i.im.manifest.Digest, content.MaxManifestSize)
		if err != nil {
			return nil, err
		}
		i.raw = b
	}
	return i.raw, nil
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.im.man.Layers {
		if l.Digest.String() == h.String() {
			return &storeLayer{ctx: i.ctx, s: i.s, desc: l.Digest, size: l.Size, mt: l.MediaType}, nil
		}
	}
	if i.im.man.Config.Digest.String() == h.String() {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("layer %s of image %s: %w", h, i.im.id, content.ErrNotFound)
}

// storeLayer is a partial.CompressedLayer over a layer blob in the store.
type storeLayer struct {
	ctx  context.Context
	s    *content.Store
	desc digest.Digest
	size int64
	mt   string
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.desc.String()) }
func (l *storeLayer) Compressed() (io.ReadCloser, error)  { return l.s.Open(l.ctx, l.desc) }
func (l *storeLayer) Size() (int64, error)                { return l.size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.mt), nil }
