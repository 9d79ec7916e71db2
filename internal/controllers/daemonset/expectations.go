package daemonset

import (
	"sync"
	"time"
)

// expectationsTimeout is how long outstanding expectations are trusted, so
// a lost watch event cannot wedge a DaemonSet.
const expectationsTimeout = 5 * time.Minute

// expectations counts, per DaemonSet, the pod creations and deletions the
// controller asked for and its informer has not shown yet. While any are
// outstanding its view of the pods is stale and it must not create or
// delete more (generated names would let it create a second pod on a
// node). Deletions are tracked by pod key so a pod seen twice on its way
// out counts once. (A candidate for internal/controllers/podcontrol.)
type expectations struct {
	mu    sync.Mutex
	byKey map[string]*expectation
}

type expectation struct {
	creations int
	deletions map[string]bool
	at        time.Time
}

func newExpectations() *expectations {
	return &expectations{byKey: map[string]*expectation{}}
}

// expect records creations and deletions (pod keys) about to be asked for.
func (e *expectations) expect(key string, creations int, deletions []string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{creations: creations, deletions: map[string]bool{}, at: now}
	for _, p := range deletions {
		x.deletions[p] = true
	}
	e.byKey[key] = x
}

// satisfied says whether the controller may act on key's pods.
func (e *expectations) satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	return !ok || x.creations <= 0 && len(x.deletions) == 0 || now.Sub(x.at) > expectationsTimeout
}

// created records that one creation was seen (or failed).
func (e *expectations) created(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		x.creations--
	}
}

// deleted records that pod's deletion was seen (or failed).
func (e *expectations) deleted(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		delete(x.deletions, pod)
	}
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}

// backoff spaces out the deletion of failed daemon pods on one node, so
// the controller does not fight a node agent that keeps rejecting them.
type backoff struct {
	mu      sync.Mutex
	initial time.Duration
	max     time.Duration
	byKey   map[string]backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	last  time.Time
}

// wait returns how long key must still wait; 0 means act now, and the
// next wait doubles.
func (b *backoff) wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byKey[key]
	if ok && now.Sub(e.last) > 2*b.max {
		ok = false // long quiet: start over
	}
	if ok {
		if left := e.last.Add(e.delay).Sub(now); left > 0 {
			return left
		}
		e.delay = min(2*e.delay, b.max)
	} else {
		e.delay = b.initial
	}
	e.last = now
	b.byKey[key] = e
	return 0
}
