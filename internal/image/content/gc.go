package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize bounds how much of a manifest or index GC reads (the
// distribution spec's recommended limit).
const MaxManifestSize = 4 << 20

// GC removes blobs that no reference reaches and that are older than the
// grace period, and ingests untouched for longer than the ingest expiry.
// Reachability follows image indexes (OCI and Docker manifest lists) to
// their manifests, and manifests (OCI and Docker v2 schema 2) to their
// config and layers. A subject field is not followed: a referrer (e.g. a
// signature) lives only as long as something references it. Blobs that a
// reference reaches but that are missing are skipped; an unreadable or
// malformed manifest stops GC before anything is deleted.
func (s *Store) GC(ctx context.Context) (removed []digest.Digest, err error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()

	marked, err := s.mark(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}

	now := time.Now()
	var sweep []digest.Digest
	if err := s.Walk(ctx, func(info Info) error {
		if _, ok := marked[info.Digest]; !ok && now.Sub(info.CreatedAt) >= s.grace {
			sweep = append(sweep, info.Digest)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, d := range sweep {
		if err := s.Delete(ctx, d); err != nil && !errors.Is(err, ErrNotFound) {
			return removed, fmt.Errorf("gc: %w", err)
		}
		removed = append(removed, d)
	}
	if err := s.gcIngests(now); err != nil {
		return removed, fmt.Errorf("gc: %w", err)
	}
	return removed, nil
}

// mark returns every digest reachable from the references.
func (s *Store) mark(ctx context.Context) (map[digest.Digest]struct{}, error) {
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	marked := map[digest.Digest]struct{}{}
	var queue []ocispec.Descriptor
	for _, d := range refs {
		queue = append(queue, d)
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if _, ok := marked[d.Digest]; ok || d.Digest.Validate() != nil {
			continue
		}
		marked[d.Digest] = struct{}{}
		mt := types.MediaType(d.MediaType)
		if d.MediaType != "" && !mt.IsIndex() && !mt.IsImage() {
			continue // a leaf: config, layer, or something we do not parse
		}
		b, err := s.ReadBlob(ctx, d.Digest, MaxManifestSize)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // e.g. an index whose other platforms were never pulled
		case err != nil && d.MediaType == "" && errors.Is(err, ErrInvalid):
			continue // untyped and too big to be a manifest
		case err != nil:
			return nil, err
		}
		kids, err := Children(d.MediaType, b)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		queue = append(queue, kids...)
	}
	return marked, nil
}

// Children returns the descriptors a manifest or index blob refers to:
// the manifests of an index, the config and layers of an image manifest.
// Other media types have no children. An empty mediaType is sniffed from
// the JSON (its mediaType field, else the presence of "manifests" or
// "config"); bytes that are not JSON are then a leaf. A known manifest type
// whose bytes do not parse, or a child with an invalid digest, is
// ErrInvalid.
func Children(mediaType string, b []byte) ([]ocispec.Descriptor, error) {
	mt := types.MediaType(mediaType)
	if mt == "" {
		var sniff struct {
			MediaType string          `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
			Config    json.RawMessage `json:"config"`
		}
		if json.Unmarshal(b, &sniff) != nil {
			return nil, nil
		}
		switch {
		case sniff.MediaType != "":
			mt = types.MediaType(sniff.MediaType)
		case sniff.Manifests != nil:
			mt = types.OCIImageIndex
		case sniff.Config != nil:
			mt = types.OCIManifestSchema1
		default:
			return nil, nil
		}
	}
	var kids []ocispec.Descriptor
	switch {
	case mt.IsIndex():
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("parse %s: %v: %w", mt, err, ErrInvalid)
		}
		kids = idx.Manifests
	case mt.IsImage():
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("parse %s: %v: %w", mt, err, ErrInvalid)
		}
		if m.Config.Digest != "" {
			kids = append(kids, m.Config)
		}
		kids = append(kids, m.Layers...)
	default:
		return nil, nil
	}
	for _, k := range kids {
		if err := k.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("child digest %q: %v: %w", k.Digest, err, ErrInvalid)
		}
	}
	return kids, nil
}

// gcIngests removes ingests untouched for longer than the ingest expiry,
// skipping any a writer holds.
func (s *Store) gcIngests(now time.Time) error {
	ents, err := os.ReadDir(s.ingestRoot())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range ents {
		dir := filepath.Join(s.ingestRoot(), e.Name())
		if !s.ingestExpired(dir, now) {
			continue
		}
		lock, err := lockIngest(dir, false)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				_ = os.RemoveAll(dir) // no lock file: debris of a crash
			}
			continue // in use, or gone
		}
		err = os.RemoveAll(dir)
		lock.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ingestExpired reports whether nothing in dir changed within the expiry.
func (s *Store) ingestExpired(dir string, now time.Time) bool {
	latest := time.Time{}
	for _, name := range []string{"", "data"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return now.Sub(latest) >= s.ingestExpiry
}
