package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/image/content"
)

const (
	defaultPath     = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	historyComment  = "buildkit.dockerfile.v0"
	mediaDockerMan  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
	maxConfigSize   = 8 << 20
)

// imageState is an image under construction: its config and its layers.
// It is what a cache entry stores.
type imageState struct {
	Image  dockerspec.DockerOCIImage `json:"image"`
	Layers []ocispec.Descriptor      `json:"layers"`
}

func (s *imageState) clone() *imageState {
	b, _ := json.Marshal(s)
	var c imageState
	_ = json.Unmarshal(b, &c)
	return &c
}

// NormalizeName turns a user's image name into the reference stored in
// the content store, as Docker does: "hello" → "docker.io/library/hello:latest".
func NormalizeName(s string) (string, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	return reference.TagNameOnly(named).String(), nil
}

// loadImage resolves name in the store to an image state.
func (b *Builder) loadImage(ctx context.Context, name string, platform ocispec.Platform) (*imageState, digest.Digest, error) {
	ref, err := NormalizeName(name)
	if err != nil {
		return nil, "", fmt.Errorf("base image %q: %w", name, err)
	}
	desc, err := b.store.Ref(ctx, ref)
	if errors.Is(err, content.ErrNotFound) {
		return nil, "", fmt.Errorf("base image %q (%s) is not in the local store (pull or build it first): %w", name, ref, ErrNotFound)
	} else if err != nil {
		return nil, "", fmt.Errorf("base image %q: %w", name, err)
	}
	for range 3 { // index → manifest
		raw, err := b.store.ReadBlob(ctx, desc.Digest, content.MaxManifestSize)
		if err != nil {
			return nil, "", fmt.Errorf("base image %q: %w", name, err)
		}
		var probe struct {
			MediaType string               `json:"mediaType"`
			Manifests []ocispec.Descriptor `json:"manifests"`
			Config    ocispec.Descriptor   `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, "", fmt.Errorf("base image %q: manifest %s: %v: %w", name, desc.Digest, err, ErrInvalid)
		}
		if probe.Manifests != nil || probe.MediaType == ocispec.MediaTypeImageIndex || probe.MediaType == mediaDockerList {
			next, ok := pickPlatform(probe.Manifests, platform)
			if !ok {
				return nil, "", fmt.Errorf("base image %q has no manifest for %s/%s: %w", name, platform.OS, platform.Architecture, ErrNotFound)
			}
			desc = next
			continue
		}
		cfgRaw, err := b.store.ReadBlob(ctx, probe.Config.Digest, maxConfigSize)
		if err != nil {
			return nil, "", fmt.Errorf("base image %q: config: %w", name, err)
		}
		st := &imageState{Layers: probe.Layers}
		if err := json.Unmarshal(cfgRaw, &st.Image); err != nil {
			return nil, "", fmt.Errorf("base image %q: config: %v: %w", name, err, ErrInvalid)
		}
		if len(st.Image.RootFS.DiffIDs) != len(st.Layers) {
			return nil, "", fmt.Errorf("base image %q: %d layers but %d diff_ids: %w", name, len(st.Layers), len(st.Image.RootFS.DiffIDs), ErrInvalid)
		}
		return st, desc.Digest, nil
	}
	return nil, "", fmt.Errorf("base image %q: nested indexes: %w", name, ErrInvalid)
}

func pickPlatform(ms []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, bool) {
	for _, m := range ms {
		if m.Platform != nil && m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || m.Platform.Variant == p.Variant) {
			return m, true
		}
	}
	if len(ms) == 1 && ms[0].Platform == nil {
		return ms[0], true
	}
	return ocispec.Descriptor{}, false
}

// scratchImage is BuildKit's empty image.
func scratchImage(p ocispec.Platform) *imageState {
	st := &imageState{}
	st.Image.OS = p.OS
	st.Image.Architecture = p.Architecture
	st.Image.Variant = p.Variant
	st.Image.RootFS.Type = "layers"
	st.Image.RootFS.DiffIDs = []digest.Digest{}
	st.Image.Config.Env = []string{defaultPath}
	st.Image.Config.WorkingDir = "/"
	return st
}

// commitImage writes the config and manifest of st and returns the image
// ID and the manifest descriptor.
func (bc *buildCtx) commitImage(ctx context.Context, st *imageState) (digest.Digest, ocispec.Descriptor, error) {
	if st.Image.RootFS.DiffIDs == nil {
		st.Image.RootFS.DiffIDs = []digest.Digest{}
	}
	st.Image.RootFS.Type = "layers"
	cfg, err := json.Marshal(st.Image)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("build: config: %w", err)
	}
	cdesc, err := bc.b.store.WriteBlob(ctx, bytes.NewReader(cfg), int64(len(cfg)), digest.FromBytes(cfg))
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("build: write config: %w", err)
	}
	layers := st.Layers
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    cdesc.Digest,
			Size:      cdesc.Size,
		},
		Layers: layers,
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("build: manifest: %w", err)
	}
	mdesc, err := bc.b.store.WriteBlob(ctx, bytes.NewReader(mb), int64(len(mb)), digest.FromBytes(mb))
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("build: write manifest: %w", err)
	}
	mdesc.MediaType = ocispec.MediaTypeImageManifest
	return cdesc.Digest, mdesc, nil
}

// cache maps step keys to image states, one JSON file per key under
// <store root>/buildcache.
type cache struct {
	store    Store
	disabled bool
}

func (c *cache) path(key digest.Digest) string {
	return filepath.Join(c.store.Root(), "buildcache", key.Encoded()+".json")
}

// get returns the cached state for key, or nil. Entries whose layers are
// no longer in the store are misses.
func (c *cache) get(ctx context.Context, key digest.Digest) *imageState {
	if c.disabled {
		return nil
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil
	}
	var st imageState
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	for _, l := range st.Layers {
		if _, err := c.store.Info(ctx, l.Digest); err != nil {
			return nil
		}
	}
	return &st
}

// put records st under key. Errors are ignored: the cache is an
// optimisation and a failed write only costs a rebuild.
func (c *cache) put(key digest.Digest, st *imageState) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	p := c.path(key)
	if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return
	}
	_ = atomicfile.WriteFile(p, b, 0o644)
}

// chainKey derives a step's cache key from its parent key and parts.
func chainKey(parent digest.Digest, parts ...string) digest.Digest {
	return digest.FromString(string(parent) + "\x00" + strings.Join(parts, "\x00"))
}
