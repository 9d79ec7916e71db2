package scheduler

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// podQueue hands pending pods (by namespace/name key) to workers, as
// kube-scheduler's queue does: a pod no node fits is parked until an event
// that may help it (a node added or changed, a pod going away, ...) or
// until it has been parked for the unschedulable timeout; it then comes
// back after its backoff, which doubles with each failed attempt.
type podQueue struct {
	q     workqueue.TypedRateLimitingInterface[string]
	clock clock.PassiveClock
	// initial and max backoff after failed attempts.
	initial, max time.Duration

	mu   sync.Mutex
	pods map[string]*queuedPod
	// moves counts move requests; a pod whose cycle saw a move request
	// go by is not parked but retried after its backoff, so the event is
	// not lost.
	moves int64
}

type queuedPod struct {
	attempts    int
	lastAttempt time.Time
	// parked is when the pod was parked as unschedulable (zero: it is not).
	parked time.Time
	// rejectedBy names the filters that rejected the pod's nodes.
	rejectedBy map[string]bool
}

func newPodQueue(clk clock.PassiveClock, initial, max time.Duration) *podQueue {
	return &podQueue{
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](initial, max),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"}),
		clock:   clk,
		initial: initial,
		max:     max,
		pods:    map[string]*queuedPod{},
	}
}

// add queues a new or changed pending pod; a parked pod comes back after
// what is left of its backoff.
func (q *podQueue) add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pods[key]
	if p == nil || p.attempts == 0 {
		q.q.Add(key)
		return
	}
	q.unparkLocked(key, p)
}

func (q *podQueue) backoff(attempts int) time.Duration {
	d := q.initial
	for i := 1; i < attempts && d < q.max; i++ {
		d *= 2
	}
	return min(d, q.max)
}

// unparkLocked queues a pod after the rest of its backoff.
func (q *podQueue) unparkLocked(key string, p *queuedPod) {
	p.parked = time.Time{}
	p.rejectedBy = nil
	wait := q.backoff(p.attempts) - q.clock.Since(p.lastAttempt)
	if wait <= 0 {
		q.q.Add(key)
	} else {
		q.q.AddAfter(key, wait)
	}
}

// get blocks for the next pod; quit is true once the queue is shut down.
func (q *podQueue) get() (key string, quit bool) { return q.q.Get() }

// done marks the end of the work on key (see workqueue's Done).
func (q *podQueue) done(key string) { q.q.Done(key) }

// startCycle records an attempt and returns the move count to pass to
// park.
func (q *podQueue) startCycle(key string) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pods[key]
	if p == nil {
		p = &queuedPod{}
		q.pods[key] = p
	}
	p.attempts++
	p.lastAttempt = q.clock.Now()
	return q.moves
}

// park sets an unschedulable pod aside until an event for one of the
// filters that rejected it; if a move request came while its cycle ran,
// the pod is retried after its backoff instead.
func (q *podQueue) park(key string, cycleMoves int64, rejectedBy map[string]bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pods[key]
	if p == nil {
		return
	}
	if q.moves != cycleMoves {
		q.unparkLocked(key, p)
		return
	}
	p.parked = q.clock.Now()
	p.rejectedBy = rejectedBy
}

// retry queues a pod whose cycle failed for another reason (an API error)
// with the queue's rate limiting.
func (q *podQueue) retry(key string) { q.q.AddRateLimited(key) }

// forget drops what the queue knows of a pod that is bound or gone.
func (q *podQueue) forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pods, key)
	q.q.Forget(key)
}

// move brings back the parked pods rejected by one of plugins (all parked
// pods when plugins is empty).
func (q *podQueue) move(plugins ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moves++
	for key, p := range q.pods {
		if p.parked.IsZero() {
			continue
		}
		hit := len(plugins) == 0
		for _, pl := range plugins {
			if p.rejectedBy[pl] {
				hit = true
				break
			}
		}
		if hit {
			q.unparkLocked(key, p)
		}
	}
}

// flush brings back pods parked for longer than timeout.
func (q *podQueue) flush(timeout time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, p := range q.pods {
		if !p.parked.IsZero() && q.clock.Since(p.parked) >= timeout {
			q.unparkLocked(key, p)
		}
	}
}

// parkedCount returns the number of parked pods.
func (q *podQueue) parkedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, p := range q.pods {
		if !p.parked.IsZero() {
			n++
		}
	}
	return n
}

func (q *podQueue) shutDown() { q.q.ShutDown() }
