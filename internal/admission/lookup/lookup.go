// Package lookup is what Skiff's admission plugins share about reading
// other objects: waiting for their informer caches, and a short-lived
// record of direct API reads for namespaces the cache shows empty (so an
// object created just before the write it governs still applies, as
// upstream's LimitRanger and PodPreset plugins do). Only packages under
// internal/admission import it.
package lookup

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
)

// ErrNotReady is upstream's answer while a plugin's caches fill.
var ErrNotReady = errors.New("not yet ready to handle request")

// WaitForSync waits up to timeout for synced, or returns ErrNotReady.
func WaitForSync(ctx context.Context, timeout time.Duration, synced cache.InformerSynced) error {
	if synced() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), synced) {
		return ErrNotReady
	}
	return nil
}

// Live remembers direct reads of one kind per namespace for TTL.
type Live[T any] struct {
	TTL time.Duration
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]liveEntry[T]
}

type liveEntry[T any] struct {
	items  []*T
	expiry time.Time
}

// Get returns namespace's items from a read younger than TTL, or reads
// them with list and remembers them.
func (l *Live[T]) Get(namespace string, list func() ([]T, error)) ([]*T, error) {
	now := l.Now()
	l.mu.Lock()
	e, ok := l.entries[namespace]
	l.mu.Unlock()
	if ok && now.Before(e.expiry) {
		return e.items, nil
	}
	items, err := list()
	if err != nil {
		return nil, err
	}
	e = liveEntry[T]{expiry: now.Add(l.TTL)}
	for i := range items {
		e.items = append(e.items, &items[i])
	}
	l.mu.Lock()
	if l.entries == nil {
		l.entries = map[string]liveEntry[T]{}
	}
	l.entries[namespace] = e
	l.mu.Unlock()
	return e.items, nil
}
