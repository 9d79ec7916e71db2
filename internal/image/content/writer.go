package content

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/atomicfile"
)

// errRetryLock: the lock file vanished under us (the ingest was committed or
// removed); open it again.
var errRetryLock = errors.New("ingest lock file replaced")

// ingestDir names a ref's ingest directory by the ref's hash, so any string
// is a safe ref.
func (s *Store) ingestDir(ref string) string {
	return filepath.Join(s.ingestRoot(), digest.FromString(ref).Encoded())
}

// lockIngest creates dir if needed and takes an exclusive, non-blocking
// flock on dir/lock. The lock is per open file, so it excludes writers in
// this process and in others alike.
func lockIngest(dir string, create bool) (*os.File, error) {
	for range 10 {
		f, err := tryLockIngest(dir, create)
		if errors.Is(err, errRetryLock) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("ingest %s: lock keeps moving: %w", filepath.Base(dir), ErrUnavailable)
}

func tryLockIngest(dir string, create bool) (*os.File, error) {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	p := filepath.Join(dir, "lock")
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, err
		}
		return nil, errRetryLock // dir removed between MkdirAll and open
	} else if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrUnavailable
		}
		return nil, err
	}
	// The holder before us may have removed the ingest after we opened the
	// file: then our lock is on a dead inode.
	var held, cur syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, err
	}
	if err := syscall.Stat(p, &cur); err != nil || cur.Ino != held.Ino || cur.Dev != held.Dev {
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if !create {
			return nil, fs.ErrNotExist
		}
		return nil, errRetryLock
	}
	return f, nil
}

// Writer opens or resumes the ingest named ref.
func (s *Store) Writer(ctx context.Context, ref string) (Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("ingest ref must not be empty: %w", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := s.ingestDir(ref)
	lock, err := lockIngest(dir, true)
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	w := &writer{s: s, ref: ref, dir: dir, lock: lock, hash: sha256.New()}
	if err := w.open(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	return w, nil
}

type writer struct {
	s      *Store
	ref    string
	dir    string
	lock   *os.File
	f      *os.File
	hash   hash.Hash // sha256 of data[:offset]
	offset int64
	done   bool
}

// open opens dir/data, re-hashing whatever a previous writer left there.
func (w *writer) open() error {
	if _, err := os.Stat(filepath.Join(w.dir, "ref")); errors.Is(err, fs.ErrNotExist) {
		// Informational only: lets a person map an ingest dir to its ref.
		_ = os.WriteFile(filepath.Join(w.dir, "ref"), []byte(w.ref), 0o644)
	}
	f, err := os.OpenFile(filepath.Join(w.dir, "data"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if w.restoreHash(st.Size()) {
		if _, err := f.Seek(st.Size(), io.SeekStart); err != nil {
			f.Close()
			return err
		}
		w.f, w.offset = f, st.Size()
		return nil
	}
	n, err := io.Copy(w.hash, f)
	if err != nil {
		f.Close()
		return fmt.Errorf("rehash resumed ingest: %w", err)
	}
	w.f, w.offset = f, n
	return nil
}

// rehash digests the ingest's data with alg.
func (w *writer) rehash(alg digest.Algorithm) (digest.Digest, error) {
	if !alg.Available() {
		return "", fmt.Errorf("ingest %q: digest algorithm %q is not supported: %w", w.ref, alg, ErrInvalid)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	d, err := alg.FromReader(io.LimitReader(w.f, w.offset))
	if err != nil {
		return "", fmt.Errorf("ingest %q: rehash: %w", w.ref, err)
	}
	if _, err := w.f.Seek(w.offset, io.SeekStart); err != nil {
		return "", err
	}
	return d, nil
}

// The running hash is saved beside the data when a writer closes, so a
// resumed ingest (a registry's next upload chunk) need not hash the data
// again. The state is trusted only if it covers exactly the data's size.
const hashStateFile = "hashstate"

func (w *writer) saveHash() {
	m, ok := w.hash.(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return
	}
	buf := binary.BigEndian.AppendUint64(nil, uint64(w.offset))
	_ = os.WriteFile(filepath.Join(w.dir, hashStateFile), append(buf, state...), 0o644)
}

func (w *writer) restoreHash(size int64) bool {
	data, err := os.ReadFile(filepath.Join(w.dir, hashStateFile))
	os.Remove(filepath.Join(w.dir, hashStateFile)) // stale as soon as data changes
	if err != nil || len(data) < 8 || int64(binary.BigEndian.Uint64(data)) != size {
		return false
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(data[8:]); err != nil {
		return false
	}
	w.hash = h
	return true
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("ingest %q: write after commit or close: %w", w.ref, ErrInvalid)
	}
	n, err := w.f.Write(p)
	w.hash.Write(p[:n])
	w.offset += int64(n)
	return n, err
}

func (w *writer) Offset() int64         { return w.offset }
func (w *writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.hash) }

func (w *writer) Truncate(size int64) error {
	if w.done {
		return fmt.Errorf("ingest %q: truncate after commit or close: %w", w.ref, ErrInvalid)
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("ingest %q: truncate to %d outside [0, %d]: %w", w.ref, size, w.offset, ErrInvalid)
	}
	if err := w.f.Truncate(size); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.hash = sha256.New()
	if _, err := io.CopyN(w.hash, w.f, size); err != nil {
		return fmt.Errorf("ingest %q: rehash after truncate: %w", w.ref, err)
	}
	w.offset = size
	return nil
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return fmt.Errorf("ingest %q: commit after commit or close: %w", w.ref, ErrInvalid)
	}
	if size > 0 && size != w.offset {
		return fmt.Errorf("ingest %q: size mismatch: expected %d, got %d: %w", w.ref, size, w.offset, ErrInvalid)
	}
	dgst := w.Digest()
	if expected != "" && expected.Algorithm() != digest.SHA256 {
		// Another algorithm (sha512): hash the data once more with it.
		var err error
		if dgst, err = w.rehash(expected.Algorithm()); err != nil {
			return err
		}
	}
	if expected != "" && expected != dgst {
		return fmt.Errorf("ingest %q: digest mismatch: expected %s, got %s: %w", w.ref, expected, dgst, ErrInvalid)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("ingest %q: sync: %w", w.ref, err)
	}
	now := time.Now()
	data := w.f.Name()
	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	if err := os.Chtimes(data, now, now); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}

	w.s.gcMu.RLock()
	defer w.s.gcMu.RUnlock()
	target, _ := w.s.blobPath(dgst)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	// link(2) never replaces: exactly one of several committers of the
	// same blob creates it.
	err := os.Link(data, target)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// Filesystem without hard links: fall back to rename.
		if _, serr := os.Stat(target); serr == nil {
			err = fs.ErrExist
		} else {
			err = os.Rename(data, target)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		// Identical content; refresh its time so GC's grace period covers
		// whoever is about to reference it.
		_ = os.Chtimes(target, now, now)
		w.finish()
		return fmt.Errorf("blob %s: %w", dgst, ErrAlreadyExists)
	} else if err != nil {
		return fmt.Errorf("ingest %q: commit %s: %w", w.ref, dgst, err)
	}
	// Make the link durable before dropping the ingest that backs it.
	if err := atomicfile.SyncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("ingest %q: commit %s: %w", w.ref, dgst, err)
	}
	w.finish()
	return nil
}

// finish drops the ingest directory while still holding its lock, then
// releases everything.
func (w *writer) finish() {
	w.done = true
	w.f.Close()
	_ = os.RemoveAll(w.dir)
	w.lock.Close()
}

// Close releases the writer, keeping uncommitted data for a later resume.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.f.Close()
	if err == nil {
		w.saveHash()
	}
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// Abort removes the ingest named ref.
func (s *Store) Abort(ctx context.Context, ref string) error {
	dir := s.ingestDir(ref)
	lock, err := lockIngest(dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ingest %q: %w", ref, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("ingest %q: %w", ref, err)
	}
	defer lock.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("ingest %q: %w", ref, err)
	}
	return nil
}

// WriteBlob writes r into the store and commits it, checking size and
// expected when they are non-zero. A blob that is already present is not an
// error: the descriptor is returned and the blob's GC grace period restarts.
// Concurrent WriteBlob calls for the same digest wait for one another.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	var ref string
	if expected != "" {
		if err := expected.Validate(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("digest %q: %v: %w", expected, err, ErrInvalid)
		}
		if info, err := s.Info(ctx, expected); err == nil && (size <= 0 || info.Size == size) {
			if p, err := s.blobPath(expected); err == nil {
				now := time.Now()
				_ = os.Chtimes(p, now, now)
			}
			return ocispec.Descriptor{Digest: expected, Size: info.Size}, nil
		}
		ref = "writeblob-" + expected.String()
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		ref = "writeblob-" + hex.EncodeToString(b[:])
	}

	w, err := s.writerWait(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer w.Close()
	if expected != "" {
		// Someone else may have committed it while we waited.
		if info, err := s.Info(ctx, expected); err == nil && (size <= 0 || info.Size == size) {
			w.(*writer).finish()
			return ocispec.Descriptor{Digest: expected, Size: info.Size}, nil
		}
	}
	if w.Offset() > 0 {
		// A previous attempt left data: skip it if we can, else start over.
		if sk, ok := r.(io.Seeker); ok {
			if _, err := sk.Seek(w.Offset(), io.SeekCurrent); err != nil {
				return ocispec.Descriptor{}, err
			}
		} else if err := w.Truncate(0); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %q: %w", ref, err)
	}
	dgst := w.Digest()
	n := w.Offset()
	if err := w.Commit(ctx, size, expected); err != nil && !errors.Is(err, ErrAlreadyExists) {
		if errors.Is(err, ErrInvalid) {
			_ = w.Close()
			_ = s.Abort(ctx, ref)
		}
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{Digest: dgst, Size: n}, nil
}

// writerWait opens ref's writer, waiting while another writer holds it.
func (s *Store) writerWait(ctx context.Context, ref string) (Writer, error) {
	delay := time.Millisecond
	for {
		w, err := s.Writer(ctx, ref)
		if !errors.Is(err, ErrUnavailable) {
			return w, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ingest %q: %w", ref, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
