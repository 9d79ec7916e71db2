package content

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Info describes a committed blob.
type Info struct {
	Digest digest.Digest
	Size   int64
	// CreatedAt is when the blob was last committed. Committing an
	// identical blob again refreshes it, which restarts its GC grace period.
	CreatedAt time.Time
}

// ReaderAt gives random access to a blob. It does not verify the digest;
// use [Provider.Open] for a verified sequential read.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Provider reads committed blobs.
type Provider interface {
	// ReaderAt opens desc's blob for random access; if desc.Size is set it
	// must match the size on disk.
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
	// Open returns a sequential reader that verifies the digest when read
	// to the end and then fails with ErrInvalid instead of io.EOF if the
	// bytes on disk do not match.
	Open(ctx context.Context, dgst digest.Digest) (io.ReadCloser, error)
}

// Writer writes one blob into an ingest. Data goes to disk as it is
// written; Close without Commit keeps it so the same ref can resume.
type Writer interface {
	io.WriteCloser
	// Offset is the number of bytes in the ingest (including bytes written
	// before a restart when the ref was resumed).
	Offset() int64
	// Digest is the running digest of the bytes written so far.
	Digest() digest.Digest
	// Truncate cuts the ingest to size bytes (size <= Offset).
	Truncate(size int64) error
	// Commit checks size and expected (each when non-zero), fsyncs and
	// atomically moves the blob into place. A mismatch is ErrInvalid and
	// leaves the ingest for the caller to fix or abort. If the blob is
	// already present the ingest is dropped and ErrAlreadyExists returned.
	Commit(ctx context.Context, size int64, expected digest.Digest) error
}

// Ingester starts or resumes writes.
type Ingester interface {
	// Writer opens the ingest named ref, creating it or resuming it. It
	// fails with ErrUnavailable while another writer holds the same ref.
	Writer(ctx context.Context, ref string) (Writer, error)
	// Abort removes the ingest named ref.
	Abort(ctx context.Context, ref string) error
}

// Manager inspects and removes committed blobs.
type Manager interface {
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	Walk(ctx context.Context, fn func(Info) error) error
	Delete(ctx context.Context, dgst digest.Digest) error
}

// RefStore keeps named references (e.g. "docker.io/library/busybox:latest",
// normalised by the caller) to root descriptors (manifests or indexes).
type RefStore interface {
	SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error
	Ref(ctx context.Context, name string) (ocispec.Descriptor, error)
	Refs(ctx context.Context) (map[string]ocispec.Descriptor, error)
	DeleteRef(ctx context.Context, name string) error
}

var (
	_ Provider = (*Store)(nil)
	_ Ingester = (*Store)(nil)
	_ Manager  = (*Store)(nil)
	_ RefStore = (*Store)(nil)
	_ Writer   = (*writer)(nil)
)
