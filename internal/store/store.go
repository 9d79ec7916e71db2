// Package store is the key-value contract between the API server and its
// backing database. Only the API server imports it. The one production
// implementation is etcd (NewEtcd); the conformance suite in storetest runs
// against every implementation.
package store

import (
	"context"
	"errors"
)

// Error kinds. Implementations wrap these with context; callers test with
// errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means the object changed since the revision the caller
	// read (optimistic concurrency).
	ErrConflict = errors.New("conflict")
	// ErrCompacted means the requested revision is no longer kept.
	ErrCompacted   = errors.New("revision compacted")
	ErrUnavailable = errors.New("store unavailable")
)

// KV is one stored value and the revision it was last modified at.
type KV struct {
	Key   string
	Value []byte
	// Rev is the modification revision: the object's resourceVersion.
	Rev int64
}

// ListOptions bound a range read.
type ListOptions struct {
	// Limit caps the number of items (0 = no limit).
	Limit int64
	// StartKey begins the range at this key (inclusive) instead of the
	// prefix; used for continue tokens.
	StartKey string
	// Rev reads at this revision (0 = newest).
	Rev int64
}

// ListResult is one page of a range read.
type ListResult struct {
	Items []KV
	// Rev is the revision the page was read at.
	Rev int64
	// More is true when items remain after the last one returned.
	More bool
	// Remaining counts the items after this page when More is set.
	Remaining int64
}

// EventType says what happened to a key.
type EventType int

const (
	Put EventType = iota
	Delete
)

// Event is one change seen by a watch. For a Delete, Value is empty and
// Prev holds the last value.
type Event struct {
	Type    EventType
	Key     string
	Value   []byte
	Prev    []byte
	Rev     int64
	Created bool
}

// WatchResult is what a watch channel carries: events, or a final error.
type WatchResult struct {
	Events []Event
	Err    error
	// Progress is set on a progress notification: no events, but the store
	// has seen everything up to Rev.
	Progress bool
	Rev      int64
}

// Interface is the store contract.
type Interface interface {
	Get(ctx context.Context, key string) (KV, error)
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Count returns how many keys lie under prefix.
	Count(ctx context.Context, prefix string) (int64, error)
	// Create writes key only if it does not exist and returns the new revision.
	Create(ctx context.Context, key string, value []byte) (int64, error)
	// Update writes key only if its revision is still rev.
	Update(ctx context.Context, key string, value []byte, rev int64) (int64, error)
	// Delete removes key only if its revision is still rev (0 = any).
	Delete(ctx context.Context, key string, rev int64) (KV, error)
	// Watch streams changes under prefix after revision rev (events with
	// Rev > rev). The channel closes when ctx ends or after an Err result.
	Watch(ctx context.Context, prefix string, rev int64) <-chan WatchResult
	// CurrentRev returns the store's newest revision.
	CurrentRev(ctx context.Context) (int64, error)
	// Ready reports whether the store answers.
	Ready(ctx context.Context) error
}
