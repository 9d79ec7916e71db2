package content

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Default garbage-collection timings.
const (
	DefaultGCGracePeriod = time.Minute
	DefaultIngestExpiry  = 24 * time.Hour
)

// Option configures a Store.
type Option func(*Store)

// WithGCGracePeriod sets how old an unreferenced blob must be before GC
// removes it (default one minute). It protects blobs being assembled into
// an image that has no reference yet.
func WithGCGracePeriod(d time.Duration) Option { return func(s *Store) { s.grace = d } }

// WithIngestExpiry sets how long an untouched ingest survives GC (default
// one day).
func WithIngestExpiry(d time.Duration) Option { return func(s *Store) { s.ingestExpiry = d } }

// Store is the directory-backed content store. Create it with New.
type Store struct {
	root         string
	grace        time.Duration
	ingestExpiry time.Duration

	// gcMu: GC holds it exclusively; commits and ref updates share it, so
	// a sweep never races a blob becoming referenced in this process.
	gcMu sync.RWMutex
	// refsMu serialises read-modify-write of refs.json in this process
	// (flock serialises across processes).
	refsMu sync.Mutex
}

// New returns a store rooted at root. It does no I/O; directories are made
// by Init or lazily on first write.
func New(root string, opts ...Option) *Store {
	s := &Store{root: root, grace: DefaultGCGracePeriod, ingestExpiry: DefaultIngestExpiry}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Init creates the store's directories.
func (s *Store) Init() error {
	for _, d := range []string{filepath.Join(s.root, "blobs", digest.Canonical.String()), s.ingestRoot()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("content store init: %w", err)
		}
	}
	return nil
}

func (s *Store) ingestRoot() string { return filepath.Join(s.root, "ingest") }

// blobPath validates dgst (so it can never escape root) and returns its path.
func (s *Store) blobPath(dgst digest.Digest) (string, error) {
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", dgst, err, ErrInvalid)
	}
	return filepath.Join(s.root, "blobs", dgst.Algorithm().String(), dgst.Encoded()), nil
}

// Info returns the size and commit time of a blob.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, blobErr(dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

func blobErr(dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", dgst, ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", dgst, err)
}

// Walk calls fn for every committed blob, stopping at fn's first error.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(filepath.Join(s.root, "blobs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		if !a.IsDir() || !alg.Available() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(s.root, "blobs", a.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if dgst.Validate() != nil {
				continue // not a blob (e.g. a stray temp file)
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			} else if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes a blob. References to it are not checked; GC is the safe
// way to reclaim space.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return blobErr(dgst, err)
	}
	return nil
}

// ReaderAt opens a blob for random access (unverified).
func (s *Store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blobErr(desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobErr(desc.Digest, err)
	}
	if desc.Size > 0 && fi.Size() != desc.Size {
		f.Close()
		return nil, fmt.Errorf("blob %s: size mismatch: descriptor says %d, store has %d: %w", desc.Digest, desc.Size, fi.Size(), ErrInvalid)
	}
	return &fileReaderAt{File: f, size: fi.Size()}, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (r *fileReaderAt) Size() int64 { return r.size }

// Open returns a reader that verifies the blob's digest as it is read.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (io.ReadCloser, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blobErr(dgst, err)
	}
	return &verifyingReader{f: f, want: dgst, h: dgst.Algorithm().Hash()}, nil
}

type verifyingReader struct {
	f    *os.File
	want digest.Digest
	h    hash.Hash
	err  error
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		if got := digest.NewDigest(r.want.Algorithm(), r.h); got != r.want {
			err = fmt.Errorf("blob %s is corrupt: digest mismatch: expected %s, got %s: %w", r.want, r.want, got, ErrInvalid)
		}
	}
	r.err = err
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

// ReadBlob reads a whole blob, verified, refusing blobs larger than limit
// bytes (limit <= 0: no limit).
func (s *Store) ReadBlob(ctx context.Context, dgst digest.Digest, limit int64) ([]byte, error) {
	rc, err := s.Open(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if limit > 0 {
		r = io.LimitReader(rc, limit+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if limit > 0 && int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s is larger than %d bytes: %w", dgst, limit, ErrInvalid)
	}
	return b, nil
}
