package content

import "errors"

// Error kinds returned (wrapped with context) by this package.
var (
	// ErrNotFound: the blob, ingest or reference does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the blob being committed is already in the store.
	// It is harmless: the content is identical by construction.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: bad input, a size or digest mismatch, or corrupt content.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the ingest ref is locked by another writer; retry later.
	ErrUnavailable = errors.New("unavailable")
)
