package content

import "skiff.dev/skiff/internal/errdefs"

// Error kinds returned (wrapped with context) by this package.
var (
	// ErrNotFound: the blob, ingest or reference does not exist.
	ErrNotFound = errdefs.ErrNotFound
	// ErrAlreadyExists: the blob being committed is already in the store.
	// It is harmless: the content is identical by construction.
	ErrAlreadyExists = errdefs.ErrAlreadyExists
	// ErrInvalid: bad input, a size or digest mismatch, or corrupt content.
	ErrInvalid = errdefs.ErrInvalid
	// ErrUnavailable: the ingest ref is locked by another writer; retry later.
	ErrUnavailable = errdefs.ErrUnavailable
)
