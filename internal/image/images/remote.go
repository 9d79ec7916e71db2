package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/content"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Platform is picked from multi-platform indexes; zero means the
	// service's platform (see WithPlatform).
	Platform ocispec.Platform
	// Insecure allows plain HTTP. Loopback registries (localhost,
	// 127.0.0.0/8, ::1) get it anyway, as with Docker.
	Insecure bool
	// Keychain supplies credentials; nil means authn.DefaultKeychain, which
	// reads the docker config.json that Login writes.
	Keychain authn.Keychain
	// Progress, if not nil, receives Docker-like progress lines.
	Progress io.Writer
}

// PushOptions tune Push.
type PushOptions struct {
	Insecure bool           // as in PullOptions
	Keychain authn.Keychain // as in PullOptions
	Progress io.Writer      // as in PullOptions
}

// Pull fetches ref (a name as Docker normalises it, e.g. "busybox" is
// docker.io/library/busybox:latest, or name@digest) from its registry into
// the store and tags it. From an index it takes the manifest for the
// platform only, and the name points at that manifest. Every blob is
// verified against its digest as it is written; layers already in the
// store are not fetched again. If anything fails, nothing is tagged.
// It returns the image ID (the config digest).
func (s *Service) Pull(ctx context.Context, ref string, opts PullOptions) (string, error) {
	n, r, err := remoteRef(ref, opts.Insecure)
	if err != nil {
		return "", fmt.Errorf("pull: %w", err)
	}
	p := opts.Platform
	if p.OS == "" {
		p = s.platform
	}
	ropts := remoteOptions(ctx, opts.Keychain)
	progress := progressWriter(opts.Progress)
	if t, ok := r.(name.Tag); ok {
		fmt.Fprintf(progress, "%s: Pulling from %s\n", t.TagStr(), r.Context().RepositoryStr())
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", ref, remoteErr(err))
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", fmt.Errorf("pull %s: %w", ref, remoteErr(err))
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return "", fmt.Errorf("pull %s: index: %w", ref, remoteErr(err))
		}
		m, ok := matchPlatform(p, im.Manifests)
		if !ok {
			return "", fmt.Errorf("pull %s: no manifest for %s in the index: %w", ref, platformString(p), content.ErrNotFound)
		}
		if img, err = idx.Image(m.Digest); err != nil {
			return "", fmt.Errorf("pull %s: %w", ref, remoteErr(err))
		}
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return "", fmt.Errorf("pull %s: %w", ref, remoteErr(err))
		}
	default:
		return "", fmt.Errorf("pull %s: unsupported manifest type %q: %w", ref, desc.MediaType, content.ErrInvalid)
	}
	mdesc, id, err := s.fetchImage(ctx, img, progress)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := s.store.SetRef(ctx, n, mdesc); err != nil {
		return "", fmt.Errorf("pull %s: tag %s: %w", ref, n, err)
	}
	fmt.Fprintf(progress, "Digest: %s\nStatus: Downloaded image for %s\n", mdesc.Digest, n)
	return id.String(), nil
}

// fetchImage writes img's layers, config and manifest into the store, in
// that order, so that a manifest in the store always has its blobs.
func (s *Service) fetchImage(ctx context.Context, img v1.Image, progress io.Writer) (ocispec.Descriptor, digest.Digest, error) {
	mt, err := img.MediaType()
	if err != nil {
		return ocispec.Descriptor{}, "", remoteErr(err)
	}
	rawMan, err := img.RawManifest()
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("manifest: %w", remoteErr(err))
	}
	man, err := v1.ParseManifest(bytes.NewReader(rawMan))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("manifest: %v: %w", err, content.ErrInvalid)
	}
	for _, l := range man.Layers {
		if !l.MediaType.IsDistributable() {
			return ocispec.Descriptor{}, "", fmt.Errorf("layer %s: non-distributable layers are not supported: %w", l.Digest, content.ErrInvalid)
		}
		short := l.Digest.Hex[:12]
		want := digest.Digest(l.Digest.String())
		if info, err := s.store.Info(ctx, want); err == nil && info.Size == l.Size {
			fmt.Fprintf(progress, "%s: Already exists\n", short)
			continue
		}
		fmt.Fprintf(progress, "%s: Pulling fs layer\n", short)
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("layer %s: %w", l.Digest, remoteErr(err))
		}
		rc, err := layer.Compressed()
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("layer %s: %w", l.Digest, remoteErr(err))
		}
		_, err = s.store.WriteBlob(ctx, rc, l.Size, want)
		rc.Close()
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("layer %s: %w", l.Digest, blobErr(err))
		}
		fmt.Fprintf(progress, "%s: Pull complete\n", short)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("config: %w", remoteErr(err))
	}
	id := digest.Digest(man.Config.Digest.String())
	if _, err := s.store.WriteBlob(ctx, bytes.NewReader(rawCfg), man.Config.Size, id); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("config %s: %w", id, err)
	}
	mdig := digest.FromBytes(rawMan)
	if _, err := s.store.WriteBlob(ctx, bytes.NewReader(rawMan), int64(len(rawMan)), mdig); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("manifest %s: %w", mdig, err)
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: mdig, Size: int64(len(rawMan))}, id, nil
}

// Push uploads the image ref names (a name, not an ID: the name says where
// to push) to its registry. Layers go as stored and the manifest bytes are
// the local ones, so the pushed digest is the local one. For an image
// stored under an index, the platform's manifest is pushed. It returns the
// manifest digest.
func (s *Service) Push(ctx context.Context, ref string, opts PushOptions) (string, error) {
	im, n, _, err := s.lookup(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	if n == "" {
		return "", fmt.Errorf("push %s: an image ID says nowhere to push; tag the image with a registry name: %w", ref, content.ErrInvalid)
	}
	tag, r, err := remoteRef(n, opts.Insecure)
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	img, err := partial.CompressedToImage(&storeImage{ctx: ctx, s: s.store, im: im})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	progress := progressWriter(opts.Progress)
	fmt.Fprintf(progress, "The push refers to repository [%s]\n", r.Context().Name())
	if err := remote.Write(r, img, remoteOptions(ctx, opts.Keychain)...); err != nil {
		return "", fmt.Errorf("push %s: %w", tag, remoteErr(err))
	}
	label := r.Identifier()
	fmt.Fprintf(progress, "%s: digest: %s size: %d\n", label, im.manifest.Digest, im.manifest.Size)
	return im.manifest.Digest.String(), nil
}

// remoteRef normalises ref like Docker and parses it for the registry
// client. n is the normalised name the store uses.
func remoteRef(ref string, insecure bool) (n string, r name.Reference, err error) {
	n, err = normalize(ref)
	if err != nil {
		return "", nil, err
	}
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	// Loopback and private registries are reached over plain HTTP by
	// name.Registry.Scheme already, as docker does for localhost.
	r, err = name.ParseReference(n, append(nopts, name.StrictValidation)...)
	if err != nil {
		return "", nil, fmt.Errorf("image name %q: %v: %w", ref, err, content.ErrInvalid)
	}
	return n, r, nil
}

func remoteOptions(ctx context.Context, kc authn.Keychain) []remote.Option {
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
}

// remoteErr maps registry answers onto this package's error kinds.
func remoteErr(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%v (log in with `skiff login %s`): %w", err, hostOf(te.Request), ErrUnauthorized)
	case http.StatusNotFound:
		return fmt.Errorf("%v: %w", err, content.ErrNotFound)
	case http.StatusBadRequest:
		return fmt.Errorf("%v: %w", err, content.ErrInvalid)
	}
	if te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("%v: %w", err, content.ErrUnavailable)
	}
	return err
}

// blobErr marks a layer whose bytes do not match its digest as invalid;
// go-containerregistry checks the digest while it streams and reports a
// mismatch as a plain error.
func blobErr(err error) error {
	if errors.Is(err, content.ErrInvalid) {
		return err
	}
	if s := err.Error(); strings.Contains(s, "checksum") || strings.Contains(s, "digest") {
		return fmt.Errorf("%v (corrupt blob): %w", err, content.ErrInvalid)
	}
	return remoteErr(err)
}

func hostOf(r *http.Request) string {
	if r == nil || r.URL == nil {
		return "REGISTRY"
	}
	return r.URL.Host
}

// matchPlatform picks p's manifest from an index, as Service.pickPlatform
// does for stored indexes.
func matchPlatform(p ocispec.Platform, ms []v1.Descriptor) (v1.Descriptor, bool) {
	var images []v1.Descriptor
	for _, m := range ms {
		if !m.MediaType.IsImage() && m.MediaType != "" {
			continue
		}
		if m.Platform != nil && m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || m.Platform.Variant == p.Variant) {
			return m, true
		}
		images = append(images, m)
	}
	if len(images) == 1 && images[0].Platform == nil {
		return images[0], true
	}
	return v1.Descriptor{}, false
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func progressWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
