package images

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/content"
)

// ErrConflict: the operation conflicts with the state of the store, e.g.
// removing by ID an image that has several names, or an image in use.
var ErrConflict = errdefs.ErrConflict

const (
	maxConfigSize   = 8 << 20
	mediaDockerMan  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
	minPrefix       = 4
)

// Service answers image queries and changes over a content store.
type Service struct {
	store    *content.Store
	inUse    func(imageID string) bool
	platform ocispec.Platform
}

// Option configures a Service.
type Option func(*Service)

// WithInUse sets the hook rmi consults: an image for which it returns true
// is not removed unless forced.
func WithInUse(f func(imageID string) bool) Option {
	return func(s *Service) { s.inUse = f }
}

// WithPlatform sets the platform picked from multi-platform indexes
// (default: the running one).
func WithPlatform(p ocispec.Platform) Option {
	return func(s *Service) { s.platform = p }
}

// New returns a service over store. It does no I/O.
func New(store *content.Store, opts ...Option) *Service {
	s := &Service{store: store, platform: ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// image is one resolved image: its names and the blobs that make it.
type image struct {
	id        digest.Digest      // config digest
	root      ocispec.Descriptor // what the references point at (manifest or index)
	manifest  ocispec.Descriptor
	man       ocispec.Manifest
	rawConfig []byte
	config    dockerspec.DockerOCIImage
	names     []string // sorted
}

func (im *image) size() int64 {
	var n int64
	for _, l := range im.man.Layers {
		n += l.Size
	}
	return n
}

// images resolves every reference in the store, grouped by image ID.
func (s *Service) images(ctx context.Context) (map[digest.Digest]*image, error) {
	refs, err := s.store.Refs(ctx)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	byRoot := map[digest.Digest]*image{}
	byID := map[digest.Digest]*image{}
	names := make([]string, 0, len(refs))
	for n := range refs {
		if !content.Internal(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		desc := refs[n]
		im, ok := byRoot[desc.Digest]
		if !ok {
			im, err = s.resolve(ctx, desc)
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", n, err)
			}
			byRoot[desc.Digest] = im
			if prev, ok := byID[im.id]; ok {
				im = prev // same config reached through another manifest
				byRoot[desc.Digest] = im
			} else {
				byID[im.id] = im
			}
		}
		im.names = append(im.names, n)
	}
	return byID, nil
}

// resolve reads the manifest (picking the service's platform from an
// index) and the config that desc reaches.
func (s *Service) resolve(ctx context.Context, desc ocispec.Descriptor) (*image, error) {
	root := desc
	for range 3 {
		raw, err := s.store.ReadBlob(ctx, desc.Digest, content.MaxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		var probe struct {
			MediaType string               `json:"mediaType"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("manifest %s: %v: %w", desc.Digest, err, content.ErrInvalid)
		}
		if probe.Manifests != nil || probe.MediaType == ocispec.MediaTypeImageIndex || probe.MediaType == mediaDockerList {
			next, ok := s.pickPlatform(probe.Manifests)
			if !ok {
				return nil, fmt.Errorf("index %s has no manifest for %s/%s: %w", desc.Digest, s.platform.OS, s.platform.Architecture, content.ErrNotFound)
			}
			desc = next
			continue
		}
		im := &image{root: root, manifest: desc}
		if err := json.Unmarshal(raw, &im.man); err != nil {
			return nil, fmt.Errorf("manifest %s: %v: %w", desc.Digest, err, content.ErrInvalid)
		}
		if im.man.MediaType == "" {
			im.man.MediaType = probe.MediaType
		}
		if im.manifest.MediaType == "" {
			im.manifest.MediaType = im.man.MediaType
		}
		im.id = im.man.Config.Digest
		im.rawConfig, err = s.store.ReadBlob(ctx, im.id, maxConfigSize)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", im.id, err)
		}
		if err := json.Unmarshal(im.rawConfig, &im.config); err != nil {
			return nil, fmt.Errorf("config %s: %v: %w", im.id, err, content.ErrInvalid)
		}
		return im, nil
	}
	return nil, fmt.Errorf("nested indexes at %s: %w", root.Digest, content.ErrInvalid)
}

func (s *Service) pickPlatform(ms []ocispec.Descriptor) (ocispec.Descriptor, bool) {
	p := s.platform
	for _, m := range ms {
		if m.Platform != nil && m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || m.Platform.Variant == p.Variant) {
			return m, true
		}
	}
	if len(ms) == 1 {
		return ms[0], true
	}
	return ocispec.Descriptor{}, false
}

// lookup finds the image nameOrID designates, like Docker: a full ID
// ("sha256:<hex>" or 64 hex), a name, or a unique ID prefix of at least four
// hex digits (a name wins over a prefix, as in Docker). name is the
// normalised name nameOrID matched as, or "" when it matched as an ID.
func (s *Service) lookup(ctx context.Context, nameOrID string) (im *image, name string, all map[digest.Digest]*image, err error) {
	all, err = s.images(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	hex := strings.TrimPrefix(nameOrID, "sha256:")
	isHex := len(hex) >= minPrefix && strings.Trim(strings.ToLower(hex), "0123456789abcdef") == ""
	if isHex && (len(hex) == 64 || strings.HasPrefix(nameOrID, "sha256:")) {
		return byPrefix(all, nameOrID, hex)
	}
	if n, nerr := normalize(nameOrID); nerr == nil {
		for _, im := range all {
			if slices.Contains(im.names, n) {
				return im, n, all, nil
			}
		}
	} else if !isHex {
		return nil, "", nil, nerr
	}
	if isHex {
		return byPrefix(all, nameOrID, hex)
	}
	return nil, "", nil, fmt.Errorf("no such image: %s: %w", nameOrID, content.ErrNotFound)
}

func byPrefix(all map[digest.Digest]*image, orig, hex string) (*image, string, map[digest.Digest]*image, error) {
	hex = strings.ToLower(hex)
	var found *image
	for id, im := range all {
		if strings.HasPrefix(id.Encoded(), hex) {
			if found != nil {
				return nil, "", nil, fmt.Errorf("image ID prefix %q is ambiguous: %w", orig, content.ErrInvalid)
			}
			found = im
		}
	}
	if found == nil {
		return nil, "", nil, fmt.Errorf("no such image: %s: %w", orig, content.ErrNotFound)
	}
	return found, "", all, nil
}

// normalize is build.NormalizeName with errors wrapping content.ErrInvalid,
// the error kinds this package returns.
func normalize(n string) (string, error) {
	nn, err := build.NormalizeName(n)
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+build.ErrInvalid.Error())
		return "", fmt.Errorf("image name %q: %s: %w", n, msg, content.ErrInvalid)
	}
	return nn, nil
}
