package job

import (
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// backoffRecord is what decides when a failed pod may be replaced: how
// many pods failed since the last success, and when the last one did.
type backoffRecord struct {
	failures    int
	lastFailure time.Time
}

// backoffStore keeps a record per Job in memory, as upstream does; after a
// restart replacements start without delay.
type backoffStore struct {
	mu      sync.Mutex
	records map[string]backoffRecord
}

func newBackoffStore() *backoffStore { return &backoffStore{records: map[string]backoffRecord{}} }

// next returns the record as it will be once the newly finished pods are
// counted; store saves it when they are.
func (s *backoffStore) next(key string, succeeded, failed []*corev1.Pod) backoffRecord {
	s.mu.Lock()
	rec := s.records[key]
	s.mu.Unlock()
	if len(succeeded) == 0 && len(failed) == 0 {
		return rec
	}
	failedAt := make([]time.Time, len(failed))
	for i, p := range failed {
		failedAt[i] = finishTime(p)
	}
	slices.SortFunc(failedAt, func(a, b time.Time) int { return a.Compare(b) })
	if len(succeeded) == 0 {
		rec.failures += len(failed)
		rec.lastFailure = failedAt[len(failedAt)-1]
		return rec
	}
	var lastSuccess time.Time
	for _, p := range succeeded {
		if t := finishTime(p); t.After(lastSuccess) {
			lastSuccess = t
		}
	}
	rec = backoffRecord{}
	for _, t := range failedAt {
		if t.After(lastSuccess) {
			rec.failures++
			rec.lastFailure = t
		}
	}
	return rec
}

func (s *backoffStore) store(key string, rec backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key] = rec
}

func (s *backoffStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
}

// remaining is how long to wait before creating a replacement pod: base
// after one failure, doubling per further failure, at most limit, counted
// from the last failure.
func (r backoffRecord) remaining(c clock.PassiveClock, base, limit time.Duration) time.Duration {
	if r.failures == 0 {
		return 0
	}
	delay := base
	for i := 1; i < r.failures && delay < limit; i++ {
		delay *= 2
	}
	delay = min(delay, limit)
	if elapsed := c.Since(r.lastFailure); elapsed < delay {
		return delay - elapsed
	}
	return 0
}

// finishTime estimates when a pod finished: the last container
// termination, else when it stopped being ready, else when it was deleted,
// else its creation.
func finishTime(p *corev1.Pod) time.Time {
	var latest time.Time
	complete := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil || term.FinishedAt.IsZero() {
			complete = false
			break
		}
		if term.FinishedAt.After(latest) {
			latest = term.FinishedAt.Time
		}
	}
	if complete {
		return latest
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		grace := int64(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		return p.DeletionTimestamp.Add(-time.Duration(grace) * time.Second)
	}
	return p.CreationTimestamp.Time
}
