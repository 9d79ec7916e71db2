package job

import (
	"context"
	"errors"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxUncounted bounds status.uncountedTerminatedPods (and the finalizers
// one sync removes), as upstream does.
const maxUncounted = 500

// track counts finished pods exactly once and finishes the Job:
//
//  1. finished pods that still hold the tracking finalizer get their UID
//     into status.uncountedTerminatedPods (Indexed Jobs record succeeded
//     pods in status.completedIndexes instead), together with the interim
//     condition once the outcome is decided; this status is written;
//  2. their finalizers are removed;
//  3. UIDs whose pods no longer hold the finalizer move into
//     status.succeeded / status.failed;
//  4. once nothing is uncounted and no pod is terminating, the Job gets
//     Complete or Failed.
//
// A crash between any two steps is repaired by the next sync: a UID stays
// uncounted until its pod's finalizer is gone, and is counted only then.
func (c *Controller) track(ctx context.Context, st *state, needsFlush bool) error {
	job := st.job
	unc := job.Status.UncountedTerminatedPods
	held := map[types.UID]bool{}
	for _, p := range st.pods {
		if hasTrackingFinalizer(p) && !st.removed[p.UID] {
			held[p.UID] = true
		}
	}
	if countReleased(&job.Status, held) {
		needsFlush = true
	}
	failing := st.finish != nil && st.finish.Type == batchv1.JobFailureTarget
	var release []*corev1.Pod
	var newDone []int
	full := false
	for _, p := range st.pods {
		if !held[p.UID] {
			continue
		}
		failed := podFailed(p, job)
		if job.DeletionTimestamp == nil && st.finish == nil && p.Status.Phase != corev1.PodSucceeded && !failed {
			continue
		}
		release = append(release, p)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !st.uncFailed[p.UID]:
			if indexed(job) {
				if ix := completionIndex(p); validIndex(p, job) && !st.prevDone.has(ix) {
					newDone = append(newDone, ix)
					needsFlush = true
				}
			} else if !st.uncSucceeded[p.UID] {
				unc.Succeeded = append(unc.Succeeded, p.UID)
				st.uncSucceeded[p.UID] = true
				needsFlush = true
			}
		case failed || failing:
			// Once the Job fails, its unfinished pods count as failed.
			if !st.uncFailed[p.UID] && (!indexed(job) || validIndex(p, job)) && matchFailurePolicy(job, p).count {
				unc.Failed = append(unc.Failed, p.UID)
				st.uncFailed[p.UID] = true
				needsFlush = true
			}
		}
		if len(newDone)+len(unc.Succeeded)+len(unc.Failed) >= maxUncounted {
			full = true
			break
		}
	}
	if indexed(job) {
		st.done = st.done.with(newDone)
		if s := st.done.String(); s != job.Status.CompletedIndexes {
			job.Status.CompletedIndexes = s
			needsFlush = true
		}
		job.Status.Succeeded = int32(st.done.total())
	}
	var final *batchv1.JobCondition
	if st.finish != nil {
		if cond := findCondition(job, st.finish.Type); cond == nil || cond.Status != corev1.ConditionTrue {
			setCondition(job, st.finish, corev1.ConditionTrue)
			needsFlush = true
		}
		typ := batchv1.JobComplete
		if failing {
			typ = batchv1.JobFailed
		}
		final = newCondition(typ, st.finish.Reason, st.finish.Message, c.clock.Now())
	}

	var err error
	if needsFlush {
		if job, err = c.updateStatus(ctx, st.key, job); err != nil {
			return err
		}
		st.job = job
		c.backoff.store(st.key, st.backoff)
		needsFlush = false
	}
	released, rmErr := c.releasePods(ctx, st.key, release)
	for uid := range released {
		delete(held, uid)
	}
	if countReleased(&job.Status, held) {
		needsFlush = true
	}
	if rmErr != nil {
		if needsFlush {
			_, err := c.updateStatus(ctx, st.key, job)
			return errors.Join(rmErr, err)
		}
		return rmErr
	}
	done := false
	unc = job.Status.UncountedTerminatedPods
	if final != nil && !full && len(unc.Succeeded)+len(unc.Failed) == 0 && st.terminating == 0 {
		setCondition(job, final, corev1.ConditionTrue)
		if final.Type == batchv1.JobComplete {
			job.Status.CompletionTime = &final.LastTransitionTime
		}
		needsFlush, done = true, true
	}
	if !needsFlush {
		return nil
	}
	if job, err = c.updateStatus(ctx, st.key, job); err != nil {
		return err
	}
	if done {
		c.finished(job, final)
	}
	return nil
}

// countReleased moves the uncounted UIDs whose pods no longer hold the
// finalizer into the counters. It reports whether the status changed.
func countReleased(status *batchv1.JobStatus, held map[types.UID]bool) bool {
	unc := status.UncountedTerminatedPods
	changed := false
	for _, list := range []struct {
		uids    *[]types.UID
		counter *int32
	}{{&unc.Succeeded, &status.Succeeded}, {&unc.Failed, &status.Failed}} {
		var keep []types.UID
		for _, uid := range *list.uids {
			if held[uid] {
				keep = append(keep, uid)
			}
		}
		if n := len(*list.uids) - len(keep); n > 0 {
			*list.counter += int32(n)
			*list.uids = keep
			changed = true
		}
	}
	return changed
}

// releasePods removes the tracking finalizer from pods, remembering the
// removals until the cache shows them. It returns the pods whose
// finalizer is gone.
func (c *Controller) releasePods(ctx context.Context, key string, pods []*corev1.Pod) (map[types.UID]bool, error) {
	var (
		mu   sync.Mutex
		done = map[types.UID]bool{}
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, parallelRequests)
	)
	for _, p := range pods {
		c.removed.expect(key, p.UID)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.removeFinalizer(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				c.removed.observed(key, p.UID)
				errs = append(errs, err)
				return
			}
			done[p.UID] = true
		})
	}
	wg.Wait()
	return done, errors.Join(errs...)
}
