package agent

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// backOff is the kubelet's restart and image-pull back-off (the semantics
// of client-go's flowcontrol.Backoff as the kubelet uses it): per key,
// the first retry may happen at once, the next waits initial, each
// further one twice as long up to max; a failure more than reset after
// the last retry (a container that ran that long) starts over.
type backOff struct {
	clock                 clock.PassiveClock
	initial, max, resetAt time.Duration

	mu      sync.Mutex
	entries map[string]*backOffEntry
}

type backOffEntry struct {
	window    time.Duration
	lastRetry time.Time
}

func newBackOff(c clock.PassiveClock, initial, max, reset time.Duration) *backOff {
	return &backOff{clock: c, initial: initial, max: max, resetAt: reset, entries: map[string]*backOffEntry{}}
}

// wait reports how long a retry of key must still wait after a failure
// at failedAt (0: retry now).
func (o *backOff) wait(key string, failedAt time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.entries[key]
	if e == nil || failedAt.Sub(e.lastRetry) > o.resetAt {
		return 0
	}
	return max(0, e.window-o.clock.Since(failedAt))
}

// waitSinceRetry reports how long a retry of key must still wait,
// counting from the last retry (image pulls).
func (o *backOff) waitSinceRetry(key string) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.entries[key]
	if e == nil {
		return 0
	}
	return max(0, e.window-o.clock.Since(e.lastRetry))
}

// next records a retry of key now, after a failure at failedAt: the
// window doubles, or starts over at initial when the failure came more
// than reset after the previous retry.
func (o *backOff) next(key string, failedAt time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.entries[key]
	if e == nil || failedAt.Sub(e.lastRetry) > o.resetAt {
		e = &backOffEntry{window: o.initial}
		o.entries[key] = e
	} else {
		e.window = min(2*e.window, o.max)
	}
	e.lastRetry = o.clock.Now()
}

// window is key's current window (0 when it has none).
func (o *backOff) window(key string) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.entries[key]; e != nil {
		return e.window
	}
	return 0
}

// forget drops key.
func (o *backOff) forget(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.entries, key)
}

// gc drops the keys not retried for longer than reset.
func (o *backOff) gc() {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.clock.Now()
	for k, e := range o.entries {
		if now.Sub(e.lastRetry) > o.resetAt {
			delete(o.entries, k)
		}
	}
}
