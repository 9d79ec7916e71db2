// Package snapshot keeps every image layer unpacked exactly once on disk, as
// a directory usable as an overlayfs lower layer, and mounts container and
// build root filesystems over them. Containers, builds and (later) pods
// share these directories; only their upper directories are their own.
//
// The container engine and the image builder import it; it imports only the
// layer unpacker.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/layer"
)

// Blobs opens compressed layer blobs; the content store implements it.
type Blobs interface {
	Open(ctx context.Context, dgst digest.Digest) (io.ReadCloser, error)
}

// Store holds unpacked layers under root/<algorithm>/<hex of the diffID>.
// A layer directory appears atomically (unpacked beside it, then renamed)
// and is never modified afterwards.
type Store struct {
	root  string
	blobs Blobs

	mu       sync.Mutex
	inflight map[digest.Digest]*sync.Mutex
}

// New returns a Store over root; it does no I/O.
func New(root string, blobs Blobs) *Store {
	return &Store{root: root, blobs: blobs, inflight: map[digest.Digest]*sync.Mutex{}}
}

// Lowers makes sure each layer is unpacked and returns the directories in
// overlayfs lowerdir order (topmost layer first). layers and diffIDs are the
// image's, bottom first. An image without layers gets one empty directory.
func (s *Store) Lowers(ctx context.Context, layers []ocispec.Descriptor, diffIDs []digest.Digest) ([]string, error) {
	if len(layers) != len(diffIDs) {
		return nil, fmt.Errorf("%d layers but %d diffIDs: %w", len(layers), len(diffIDs), errdefs.ErrInvalid)
	}
	if len(layers) == 0 {
		empty := filepath.Join(s.root, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		return []string{empty}, nil
	}
	out := make([]string, len(layers))
	for i, l := range layers {
		dir, err := s.unpack(ctx, l, diffIDs[i])
		if err != nil {
			return nil, err
		}
		out[len(layers)-1-i] = dir
	}
	return out, nil
}

// Path is where the layer with diffID lives once unpacked.
func (s *Store) Path(diffID digest.Digest) string {
	return filepath.Join(s.root, string(diffID.Algorithm()), diffID.Encoded())
}

func (s *Store) unpack(ctx context.Context, l ocispec.Descriptor, diffID digest.Digest) (string, error) {
	if err := diffID.Validate(); err != nil {
		return "", fmt.Errorf("layer diffID %q: %v: %w", diffID, err, errdefs.ErrInvalid)
	}
	dir := s.Path(diffID)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	lock := s.lock(diffID)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	rc, err := s.blobs.Open(ctx, l.Digest)
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	fs := filepath.Join(tmp, "fs")
	got, err := layer.Unpack(ctx, rc, fs)
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", l.Digest, err)
	}
	if got != diffID {
		return "", fmt.Errorf("layer %s unpacks to diffID %s, image says %s: %w", l.Digest, got, diffID, errdefs.ErrInvalid)
	}
	// The layer directory is the lower itself; rename the unpacked tree into
	// place (atomic; a concurrent process that won keeps its copy).
	if err := os.Rename(fs, dir); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return dir, nil
}

func (s *Store) lock(d digest.Digest) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.inflight[d]
	if !ok {
		m = &sync.Mutex{}
		s.inflight[d] = m
	}
	return m
}

// Mount mounts an overlayfs at target with lowers (topmost first) and, when
// upper is not empty, upper and work as its writable layer (both created if
// missing). Without upper the mount is read-only.
func Mount(target string, lowers []string, upper, work string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("overlay at %s: no lower layers: %w", target, errdefs.ErrInvalid)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("overlay: %w", err)
			}
		}
		opts += ",upperdir=" + upper + ",workdir=" + work
	} else if len(lowers) == 1 {
		// overlayfs needs two lowers without an upper; a read-only bind
		// of the single layer is the same thing.
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("bind %s read-only: %w", target, err)
		}
		return nil
	}
	// The kernel limits mount data to a page; long lowerdir lists beyond
	// that need shorter paths, which Skiff does not do yet.
	if len(opts) >= os.Getpagesize()-1 {
		return fmt.Errorf("overlay at %s: %d layers make the mount options too long: %w", target, len(lowers), errdefs.ErrUnavailable)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", target, err)
	}
	return nil
}

// Unmount detaches the mount at target; a target that is not mounted (or
// does not exist) is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}
