// Package wakeup brings controller work items back at a time read from a
// clock: a Job's backoff or deadline, a CronJob's next run. The clock may
// be fake (k8s.io/utils/clock/testing.FakeClock): due times are absolute
// and checked against the clock whenever it may have moved, so a test
// stepping the clock never misses a wakeup. Retries after errors do not
// belong here; they stay with the work queue's rate limiter, on real time.
//
// Controllers import this package; it imports nothing of Skiff.
package wakeup

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// pollInterval is how often due times are checked against a clock that
// is not the real one, whose own timers may have been set before it moved.
const pollInterval = 20 * time.Millisecond

// Wakeups holds, per key, the earliest time it is due.
type Wakeups[T comparable] struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	due   map[T]time.Time
	kick  chan struct{}
}

// New returns Wakeups on c (nil: the real clock). It starts nothing.
func New[T comparable](c clock.PassiveClock) *Wakeups[T] {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Wakeups[T]{clock: c, due: map[T]time.Time{}, kick: make(chan struct{}, 1)}
}

// At asks for key at time t, unless it is already due earlier.
func (w *Wakeups[T]) At(key T, t time.Time) {
	w.mu.Lock()
	if cur, ok := w.due[key]; !ok || t.Before(cur) {
		w.due[key] = t
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// After asks for key once d has passed on the clock.
func (w *Wakeups[T]) After(key T, d time.Duration) { w.At(key, w.clock.Now().Add(d)) }

// Run hands each key to add when it is due, until ctx ends.
func (w *Wakeups[T]) Run(ctx context.Context, add func(T)) {
	var poll <-chan time.Time
	if _, real := w.clock.(clock.RealClock); !real {
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		poll = t.C
	}
	for {
		next, pending := w.fire(add)
		var timer clock.Timer
		var fired <-chan time.Time
		if ticker, ok := w.clock.(clock.WithTicker); ok && pending {
			timer = ticker.NewTimer(next.Sub(w.clock.Now()))
			fired = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-w.kick:
		case <-fired:
		case <-poll:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// fire hands over the keys that are due and returns the earliest time
// still pending.
func (w *Wakeups[T]) fire(add func(T)) (next time.Time, pending bool) {
	now := w.clock.Now()
	var ready []T
	w.mu.Lock()
	for k, t := range w.due {
		switch {
		case !t.After(now):
			ready = append(ready, k)
			delete(w.due, k)
		case !pending || t.Before(next):
			next, pending = t, true
		}
	}
	w.mu.Unlock()
	for _, k := range ready {
		add(k)
	}
	return next, pending
}
