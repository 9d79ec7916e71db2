// Package podcontrol is what controllers that own pods share, after
// Kubernetes' controller utilities:
//
//   - RefManager claims objects by label selector through their
//     controller ownerReference: it keeps what it controls and still
//     matches, adopts matching orphans and releases what stopped matching;
//   - Expectations stop a controller from creating or deleting pods again
//     before its informer has seen the creations and deletions it already
//     asked for;
//   - Control creates pods from a template (owner reference, labels,
//     generateName) and deletes them, recording events on the owner;
//   - IsActive, IsReady, IsAvailable and SortForDeletion judge pods the way
//     upstream does.
//
// The ReplicaSet controller uses it; Job, StatefulSet and DaemonSet
// controllers are meant to. It talks to the API only through the client it
// is given.
package podcontrol

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ExpectationsTimeout is how long outstanding expectations are trusted.
// After it a controller acts again even if some creations or deletions
// were never observed, so that a lost watch event cannot wedge it.
const ExpectationsTimeout = 5 * time.Minute

// Expectations counts, per controller key, the pod creations and
// deletions a controller asked for and has not yet seen in its informer.
// While any are outstanding its view of the pods is known to be stale, and
// it must not create or delete more. Deletions are tracked by pod key, so
// that a pod seen twice on its way out (marked for deletion, then gone)
// counts once. It is safe for concurrent use.
type Expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	byKey map[string]*expectation
}

type expectation struct {
	creations int
	deletions map[string]bool
	set       time.Time
}

// NewExpectations returns empty expectations that read the time from clk.
func NewExpectations(clk clock.PassiveClock) *Expectations {
	return &Expectations{clock: clk, byKey: map[string]*expectation{}}
}

// Satisfied reports whether the controller for key may create or delete
// pods: nothing is outstanding, nothing was ever expected, or the
// expectations are older than ExpectationsTimeout.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	if !ok {
		return true
	}
	return x.creations <= 0 && len(x.deletions) == 0 ||
		e.clock.Since(x.set) > ExpectationsTimeout
}

// ExpectCreations records that n pod creations are about to be made for
// key, replacing whatever was expected before.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKey[key] = &expectation{creations: n, set: e.clock.Now()}
}

// ExpectDeletions records that the pods with podKeys (namespace/name) are
// about to be deleted for key, replacing whatever was expected before.
func (e *Expectations) ExpectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletions: make(map[string]bool, len(podKeys)), set: e.clock.Now()}
	for _, k := range podKeys {
		x.deletions[k] = true
	}
	e.byKey[key] = x
}

// CreationObserved lowers key's outstanding creations by one: the
// informer saw a pod it created, or a creation failed and will never be
// seen.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok && x.creations > 0 {
		x.creations--
	}
}

// DeletionObserved marks the deletion of podKey as seen for key (or as
// failed, so never to be seen). Repeated calls for one pod count once.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		delete(x.deletions, podKey)
	}
}

// Forget drops key's expectations, for a controller object that is gone.
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}
