// Package workloop runs a controller's workers the way every Skiff
// controller does: event handlers put keys on a rate-limited queue; after
// the informers have synced, workers take keys and call the controller's
// level-triggered sync; a failed sync is retried with back-off, and a sync
// may ask to be looked at again after a delay (RetryAfter).
package workloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SyncFunc reconciles the object named by key.
type SyncFunc func(ctx context.Context, key string) error

// Loop is a queue of keys and the workers that drain it.
type Loop struct {
	name   string
	log    *slog.Logger
	sync   SyncFunc
	synced []cache.InformerSynced

	once sync.Once
	q    workqueue.TypedRateLimitingInterface[string]
}

// New returns a Loop named name (the queue's metric name and the key in
// logs); it starts nothing.
func New(name string, log *slog.Logger, sync SyncFunc) *Loop {
	return &Loop{name: name, log: log, sync: sync}
}

// WaitFor adds informers whose caches must sync before workers run.
func (l *Loop) WaitFor(synced ...cache.InformerSynced) { l.synced = append(l.synced, synced...) }

// Queue is the loop's queue, created on first use (creating a client-go
// queue starts goroutines, which constructors must not).
func (l *Loop) Queue() workqueue.TypedRateLimitingInterface[string] {
	l.once.Do(func() {
		l.q = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: l.name})
	})
	return l.q
}

// Add enqueues key.
func (l *Loop) Add(key string) { l.Queue().Add(key) }

// retryAfter asks for another look after a delay without counting as a
// failure.
type retryAfter struct {
	d     time.Duration
	cause error
}

func (e *retryAfter) Error() string { return fmt.Sprintf("retry in %v: %v", e.d, e.cause) }
func (e *retryAfter) Unwrap() error { return e.cause }

// RetryAfter wraps cause so that the loop requeues the key after d
// instead of backing off.
func RetryAfter(d time.Duration, cause error) error { return &retryAfter{d: d, cause: cause} }

// Run waits for the caches, runs workers until ctx ends and returns nil
// then.
func (l *Loop) Run(ctx context.Context, workers int) error {
	q := l.Queue()
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), l.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s: caches did not sync", l.name)
	}
	l.log.Info("started", "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
	return nil
}

func (l *Loop) next(ctx context.Context) bool {
	q := l.Queue()
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	err := l.sync(ctx, key)
	var ra *retryAfter
	switch {
	case err == nil:
		q.Forget(key)
	case errors.As(err, &ra):
		q.Forget(key)
		q.AddAfter(key, ra.d)
	default:
		if ctx.Err() == nil {
			l.log.Debug("will retry", "key", key, "err", err)
		}
		q.AddRateLimited(key)
	}
	return true
}
