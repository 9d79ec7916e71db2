package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/atomicfile"
)

// refsFile is the on-disk form of the named references.
type refsFile struct {
	Version int                           `json:"version"`
	Refs    map[string]ocispec.Descriptor `json:"refs"`
}

// Internal reports whether a reference name belongs to a component's own
// bookkeeping rather than naming an image: such names contain "//" (the
// registry's "registry//repo@digest", for one), which no image reference
// can. Stores are shared (the registry, the engine and the node keep their
// references in one), so listings of images skip these.
func Internal(name string) bool { return strings.Contains(name, "//") }

func (s *Store) refsPath() string { return filepath.Join(s.root, "refs.json") }

func (s *Store) readRefs() (map[string]ocispec.Descriptor, error) {
	b, err := os.ReadFile(s.refsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]ocispec.Descriptor{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("read refs: %w", err)
	}
	var rf refsFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("read refs %s: %v: %w", s.refsPath(), err, ErrInvalid)
	}
	if rf.Refs == nil {
		rf.Refs = map[string]ocispec.Descriptor{}
	}
	return rf.Refs, nil
}

// updateRefs applies fn to the refs under an in-process mutex and a
// cross-process flock, then replaces refs.json atomically and durably.
func (s *Store) updateRefs(fn func(map[string]ocispec.Descriptor) error) error {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return fmt.Errorf("update refs: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(s.root, "refs.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("update refs: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("update refs: lock: %w", err)
	}
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	if err := fn(refs); err != nil {
		return err
	}
	b, err := json.MarshalIndent(refsFile{Version: 1, Refs: refs}, "", "  ")
	if err != nil {
		return fmt.Errorf("update refs: %w", err)
	}
	if err := atomicfile.WriteFile(s.refsPath(), b, 0o644); err != nil {
		return fmt.Errorf("update refs: %w", err)
	}
	return nil
}

func validRefName(name string) error {
	if name == "" || strings.ContainsAny(name, "\x00\n") {
		return fmt.Errorf("reference name %q: %w", name, ErrInvalid)
	}
	return nil
}

// SetRef points name at desc, whose blob must already be in the store.
func (s *Store) SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error {
	if err := validRefName(name); err != nil {
		return err
	}
	if _, err := s.blobPath(desc.Digest); err != nil {
		return fmt.Errorf("reference %q: %w", name, err)
	}
	// Shared with commits, exclusive with GC: the blob cannot be swept
	// between this check and the ref becoming visible.
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	info, err := s.Info(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("reference %q: %w", name, err)
	}
	if desc.Size > 0 && desc.Size != info.Size {
		return fmt.Errorf("reference %q: size mismatch: descriptor says %d, blob %s has %d: %w", name, desc.Size, desc.Digest, info.Size, ErrInvalid)
	}
	desc.Size = info.Size
	return s.updateRefs(func(refs map[string]ocispec.Descriptor) error {
		refs[name] = desc
		return nil
	})
}

// Ref returns the descriptor name points at.
func (s *Store) Ref(ctx context.Context, name string) (ocispec.Descriptor, error) {
	refs, err := s.readRefs()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, ok := refs[name]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("reference %q: %w", name, ErrNotFound)
	}
	return d, nil
}

// Refs returns a copy of all references.
func (s *Store) Refs(ctx context.Context) (map[string]ocispec.Descriptor, error) {
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	return maps.Clone(refs), nil
}

// DeleteRef removes a reference; the blobs it reached are left for GC.
func (s *Store) DeleteRef(ctx context.Context, name string) error {
	return s.updateRefs(func(refs map[string]ocispec.Descriptor) error {
		if _, ok := refs[name]; !ok {
			return fmt.Errorf("reference %q: %w", name, ErrNotFound)
		}
		delete(refs, name)
		return nil
	})
}
