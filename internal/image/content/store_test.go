package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s := New(t.TempDir(), opts...)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func writeBlob(t *testing.T, s *Store, b []byte) ocispec.Descriptor {
	t.Helper()
	desc, err := s.WriteBlob(context.Background(), bytes.NewReader(b), int64(len(b)), digest.FromBytes(b))
	if err != nil {
		t.Fatalf("WriteBlob: %v", err)
	}
	return desc
}

func readAll(t *testing.T, s *Store, d digest.Digest) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(context.Background(), d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello, skiff")},
		{"1MiB", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			desc := writeBlob(t, s, tc.data)
			if want := digest.FromBytes(tc.data); desc.Digest != want || desc.Size != int64(len(tc.data)) {
				t.Fatalf("descriptor = %v, want %s/%d", desc, want, len(tc.data))
			}
			info, err := s.Info(ctx, desc.Digest)
			if err != nil || info.Size != desc.Size || info.CreatedAt.IsZero() {
				t.Fatalf("Info = %+v, %v", info, err)
			}
			got, err := readAll(t, s, desc.Digest)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("Open read %d bytes, err %v", len(got), err)
			}
			ra, err := s.ReaderAt(ctx, desc)
			if err != nil {
				t.Fatal(err)
			}
			defer ra.Close()
			buf := make([]byte, ra.Size())
			if _, err := ra.ReadAt(buf, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, tc.data) {
				t.Fatal("ReaderAt content differs")
			}
			var walked []digest.Digest
			if err := s.Walk(ctx, func(i Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(walked) != 1 || walked[0] != desc.Digest {
				t.Fatalf("Walk = %v", walked)
			}
			// Writing it again is idempotent.
			writeBlob(t, s, tc.data)
			if err := s.Delete(ctx, desc.Digest); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Info(ctx, desc.Digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Info after Delete: %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, desc.Digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Delete: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestInvalidDigests(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, d := range []digest.Digest{"", "sha256:../../etc/passwd", "md5:abc", "sha256:ABC"} {
		if _, err := s.Info(ctx, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("Info(%q) = %v, want ErrInvalid", d, err)
		}
		if _, err := s.Open(ctx, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", d, err)
		}
	}
}

func TestCommitMismatch(t *testing.T) {
	data := []byte("the real content")
	for _, tc := range []struct {
		name     string
		size     int64
		expected digest.Digest
		msg      string
	}{
		{"size", int64(len(data)) + 1, digest.FromBytes(data), "size mismatch: expected 17, got 16"},
		{"digest", int64(len(data)), digest.FromString("other"), "digest mismatch: expected " + digest.FromString("other").String() + ", got " + digest.FromBytes(data).String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			w, err := s.Writer(ctx, "upload-1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			err = w.Commit(ctx, tc.size, tc.expected)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Commit = %v, want ErrInvalid containing %q", err, tc.msg)
			}
			w.Close()
			for _, d := range []digest.Digest{tc.expected, digest.FromBytes(data)} {
				if _, err := s.Info(ctx, d); !errors.Is(err, ErrNotFound) {
					t.Errorf("Info(%s) after failed commit = %v, want ErrNotFound", d, err)
				}
			}
			if err := s.Abort(ctx, "upload-1"); err != nil {
				t.Fatal(err)
			}
			if err := s.Abort(ctx, "upload-1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Abort = %v, want ErrNotFound", err)
			}
			// WriteBlob cleans up after itself.
			if _, err := s.WriteBlob(ctx, bytes.NewReader(data), tc.size, tc.expected); !errors.Is(err, ErrInvalid) {
				t.Fatalf("WriteBlob = %v, want ErrInvalid", err)
			}
			if ents, _ := os.ReadDir(s.ingestRoot()); len(ents) != 0 {
				t.Fatalf("ingests left: %v", ents)
			}
			if err := s.Walk(ctx, func(i Info) error { return fmt.Errorf("unexpected blob %s", i.Digest) }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCorruptionDetectedOnRead(t *testing.T) {
	s := newStore(t)
	data := bytes.Repeat([]byte("layer bytes "), 1000)
	desc := writeBlob(t, s, data)
	p, _ := s.blobPath(desc.Digest)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[500] ^ 0xff}, 500); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = readAll(t, s, desc.Digest)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("read of corrupt blob = %v, want ErrInvalid digest mismatch", err)
	}
	if _, err := s.ReadBlob(context.Background(), desc.Digest, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReadBlob of corrupt blob = %v, want ErrInvalid", err)
	}
}

func TestConcurrentWritersSameBlob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("same blob "), 50_000)
	want := digest.FromBytes(data)
	const n = 8

	// Writers with their own refs: exactly one commit creates the blob.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			w, err := s.Writer(ctx, fmt.Sprintf("upload-%d", i))
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			for off := 0; off < len(data); off += 4096 {
				if _, err := w.Write(data[off:min(off+4096, len(data))]); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = w.Commit(ctx, int64(len(data)), want)
		})
	}
	// Readers during the writes see either nothing or the whole blob.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	rg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := readAll(t, s, want)
			if err == nil && !bytes.Equal(got, data) {
				t.Error("reader saw partial or wrong content")
				return
			} else if err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("reader: %v", err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	rg.Wait()
	created := 0
	for i, err := range errs {
		switch {
		case err == nil:
			created++
		case errors.Is(err, ErrAlreadyExists):
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if created != 1 {
		t.Errorf("%d writers created the blob, want 1", created)
	}

	// WriteBlob of the same digest at once, including with nothing there.
	if err := s.Delete(ctx, want); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.WriteBlob(ctx, bytes.NewReader(data), int64(len(data)), want)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("WriteBlob %d: %v", i, err)
		}
	}
	if got, err := readAll(t, s, want); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("final content wrong: %v", err)
	}
	if ents, _ := os.ReadDir(s.ingestRoot()); len(ents) != 0 {
		t.Fatalf("ingests left: %d", len(ents))
	}
}

func TestConcurrentWritersDifferentBlobs(t *testing.T) {
	ctx := context.Background()
	s := New(t.TempDir()) // no Init: directories are made lazily
	var wg sync.WaitGroup
	const n = 16
	for i := range n {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte(i)}, 10_000+i)
			if _, err := s.WriteBlob(ctx, bytes.NewReader(b), int64(len(b)), ""); err != nil {
				t.Errorf("WriteBlob %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	count := 0
	if err := s.Walk(ctx, func(i Info) error {
		count++
		got, err := readAll(t, s, i.Digest)
		if err != nil || int64(len(got)) != i.Size {
			return fmt.Errorf("blob %s: %v", i.Digest, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("%d blobs, want %d", count, n)
	}
}

func TestSameRefIsLocked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w1, err := s.Writer(ctx, "ref")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "ref"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second Writer = %v, want ErrUnavailable", err)
	}
	if err := s.Abort(ctx, "ref"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Abort while held = %v, want ErrUnavailable", err)
	}
	w1.Close()
	w2, err := s.Writer(ctx, "ref")
	if err != nil {
		t.Fatalf("Writer after Close: %v", err)
	}
	w2.Close()
}

func TestResumableWriter(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := bytes.Repeat([]byte("chunked upload "), 10_000)
	half := len(data) / 2
	const ref = "upload-5f1c"

	s1 := New(root)
	w, err := s1.Writer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: a new Store on the same root.
	s2 := New(root)
	w, err = s2.Writer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != int64(half) {
		t.Fatalf("Offset = %d, want %d", w.Offset(), half)
	}
	if w.Digest() != digest.FromBytes(data[:half]) {
		t.Fatal("running digest after resume is wrong")
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s2, digest.FromBytes(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content after resume: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
}

func TestTruncate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, err := s.Writer(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("hello, garbage"))
	if err := w.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(6); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Truncate past offset = %v", err)
	}
	w.Write([]byte(", world"))
	if err := w.Commit(ctx, 12, digest.FromString("hello, world")); err != nil {
		t.Fatal(err)
	}
}

func TestCrashMidWriteLeavesNoBlob(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := []byte("a blob that never finished")
	s1 := New(root)
	w, err := s1.Writer(ctx, "crashy")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:10])
	// Simulate the process dying: the fd is dropped without Close/Commit
	// (closing the lock file is what the kernel does on exit).
	ww := w.(*writer)
	ww.f.Close()
	ww.lock.Close()

	s2 := New(root)
	if _, err := s2.Info(ctx, digest.FromBytes(data)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Info = %v, want ErrNotFound", err)
	}
	if _, err := s2.Info(ctx, digest.FromBytes(data[:10])); !errors.Is(err, ErrNotFound) {
		t.Fatalf("partial content visible as a blob: %v", err)
	}
	if err := s2.Walk(ctx, func(i Info) error { return fmt.Errorf("unexpected blob %s", i.Digest) }); err != nil {
		t.Fatal(err)
	}
	// The ingest is still there to resume.
	w, err = s2.Writer(ctx, "crashy")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 10 {
		t.Fatalf("Offset after crash = %d, want 10", w.Offset())
	}
}

func TestRefs(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := New(root)
	manifest := writeBlob(t, s, []byte(`{"schemaVersion":2}`))
	manifest.MediaType = ocispec.MediaTypeImageManifest

	if _, err := s.Ref(ctx, "docker.io/library/busybox:latest"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Ref on empty store = %v", err)
	}
	for _, tc := range []struct {
		name    string
		ref     string
		desc    ocispec.Descriptor
		wantErr error
	}{
		{"ok", "docker.io/library/busybox:latest", manifest, nil},
		{"digest ref", "localhost:5000/app@" + manifest.Digest.String(), manifest, nil},
		{"empty name", "", manifest, ErrInvalid},
		{"missing blob", "x:y", ocispec.Descriptor{Digest: digest.FromString("nope")}, ErrNotFound},
		{"bad digest", "x:y", ocispec.Descriptor{Digest: "sha256:zz"}, ErrInvalid},
		{"size mismatch", "x:y", ocispec.Descriptor{Digest: manifest.Digest, Size: 1}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetRef(ctx, tc.ref, tc.desc)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("SetRef = %v, want %v", err, tc.wantErr)
			}
		})
	}

	// Concurrent updates of different names all land.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.SetRef(ctx, fmt.Sprintf("example.com/app:v%d", i), manifest); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	// Durable: a new Store on the same root sees them.
	s2 := New(root)
	refs, err := s2.Refs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 22 {
		t.Fatalf("%d refs after reopen, want 22", len(refs))
	}
	got, err := s2.Ref(ctx, "docker.io/library/busybox:latest")
	if err != nil || got.Digest != manifest.Digest || got.MediaType != manifest.MediaType || got.Size != manifest.Size {
		t.Fatalf("Ref = %v, %v", got, err)
	}
	if err := s2.DeleteRef(ctx, "docker.io/library/busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if err := s2.DeleteRef(ctx, "docker.io/library/busybox:latest"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteRef = %v", err)
	}
	if _, err := New(root).Ref(ctx, "docker.io/library/busybox:latest"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted ref still visible: %v", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(root, ".refs.json.tmp-*")); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

// age makes a blob look committed long ago.
func age(t *testing.T, s *Store, d digest.Digest, by time.Duration) {
	t.Helper()
	p, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-by)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}
