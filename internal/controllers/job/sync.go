package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

// state is what one sync of a Job works out.
type state struct {
	key  string
	job  *batchv1.Job // a copy; its status is being rebuilt
	pods []*corev1.Pod
	// active pods, and counts of terminating and ready ones.
	active      []*corev1.Pod
	terminating int32
	ready       int32
	// removed are pods whose finalizer this controller removed but the
	// cache may not show it yet: they are counted already.
	removed                 map[types.UID]bool
	uncSucceeded, uncFailed map[types.UID]bool
	succeeded, failed       int32
	// finish is the interim condition (SuccessCriteriaMet or
	// FailureTarget) once the Job's outcome is decided.
	finish *batchv1.JobCondition
	// prevDone and done are the succeeded indexes of an Indexed Job,
	// before and with the pods this sync saw succeed.
	prevDone, done indexSet
	backoff        backoffRecord
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Forget(key)
		c.removed.forget(key)
		c.backoff.forget(key)
		c.written.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	if c.stale(key, cached) {
		// The update this controller wrote is on its way to the cache,
		// and its event will bring the Job back.
		return nil
	}
	job := cached.DeepCopy()
	if finished(job) {
		return c.syncFinished(ctx, key, job)
	}
	if m := job.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		c.recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return nil
	}
	if indexed(job) && job.Spec.Completions == nil {
		return nil // validation does not let this happen
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	// Read the expectations before the pods, so a pod that arrives in
	// between is seen by the next sync at the latest.
	satisfied := c.expect.Satisfied(key)
	pods, err := c.podsOf(ctx, job)
	if err != nil {
		return err
	}
	st := &state{
		key:          key,
		job:          job,
		pods:         pods,
		removed:      c.removed.pending(key),
		uncSucceeded: uidSet(job.Status.UncountedTerminatedPods.Succeeded),
		uncFailed:    uidSet(job.Status.UncountedTerminatedPods.Failed),
	}
	for _, p := range st.pods {
		switch {
		case active(p):
			st.active = append(st.active, p)
			if podReady(p) {
				st.ready++
			}
		case terminating(p):
			st.terminating++
		}
	}
	newSucceeded, newFailed := st.newlyFinished()
	st.succeeded = job.Status.Succeeded + int32(len(newSucceeded)+len(st.uncSucceeded))
	st.failed = job.Status.Failed + int32(len(st.uncFailed))
	for _, p := range newFailed {
		if matchFailurePolicy(job, p).count {
			st.failed++
		}
	}
	now := c.clock.Now()
	started := false
	if job.Status.StartTime == nil && !suspended(job) {
		job.Status.StartTime = &metav1.Time{Time: now}
		started = true
	}
	st.backoff = c.backoff.next(key, newSucceeded, newFailed)
	c.decideFailure(st, now)
	if indexed(job) {
		completions := int(*job.Spec.Completions)
		st.prevDone = parseIndexes(job.Status.CompletedIndexes, completions)
		var ixs []int
		for _, p := range st.pods {
			if p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) && !st.removed[p.UID] && validIndex(p, job) {
				ixs = append(ixs, completionIndex(p))
			}
		}
		st.done = st.prevDone.with(ixs)
		st.succeeded = int32(st.done.total())
	}

	activeCount := int32(len(st.active))
	suspendChanged := false
	var manageErr error
	if st.finish != nil {
		deleted, deletedReady, err := c.deletePods(ctx, st, st.active, false)
		if deleted != len(st.active) || !satisfied {
			// Pods may remain that the cache does not show yet.
			st.finish = nil
		}
		activeCount -= int32(deleted)
		st.terminating += int32(deleted)
		st.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			activeCount, manageErr = c.manage(ctx, st)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			complete = st.succeeded > 0 && activeCount == 0
		} else {
			complete = st.succeeded >= *job.Spec.Completions && activeCount == 0
		}
		switch {
		case complete:
			st.finish = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", now)
		case managed:
			suspendChanged = c.setSuspended(job, now)
		}
	}

	needsFlush := started || suspendChanged || activeCount != job.Status.Active ||
		!ptr.Equal(job.Status.Ready, &st.ready) || !ptr.Equal(job.Status.Terminating, &st.terminating)
	job.Status.Active = activeCount
	job.Status.Ready = ptr.To(st.ready)
	job.Status.Terminating = ptr.To(st.terminating)
	if err := c.track(ctx, st, needsFlush); err != nil {
		return fmt.Errorf("job %s: track status: %w", key, err)
	}
	return manageErr
}

// decideFailure sets st.finish when the Job has already reached its
// outcome or must fail now, and arranges a sync at the active deadline.
func (c *Controller) decideFailure(st *state, now time.Time) {
	job := st.job
	if cond := findCondition(job, batchv1.JobSuccessCriteriaMet); cond != nil && cond.Status == corev1.ConditionTrue {
		st.finish = cond.DeepCopy()
		return
	}
	if cond := findCondition(job, batchv1.JobFailureTarget); cond != nil && cond.Status == corev1.ConditionTrue {
		st.finish = cond.DeepCopy()
		return
	}
	for _, p := range st.pods {
		if podFailed(p, job) {
			if v := matchFailurePolicy(job, p); v.failJob != "" {
				st.finish = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, v.failJob, now)
				return
			}
		}
	}
	switch {
	case st.failed > ptr.Deref(job.Spec.BackoffLimit, 6) || pastBackoffLimitOnFailure(job, st.pods):
		st.finish = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", now)
	case c.pastDeadline(job):
		st.finish = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", now)
	case job.Spec.ActiveDeadlineSeconds != nil && !suspended(job) && job.Status.StartTime != nil:
		left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - c.clock.Since(job.Status.StartTime.Time)
		c.enqueueAfter(st.key, left)
	}
}

// newlyFinished returns the finished pods the Job's status does not count
// yet, in neither its counters nor its uncounted lists.
func (st *state) newlyFinished() (succeeded, failed []*corev1.Pod) {
	for _, p := range st.pods {
		if !hasTrackingFinalizer(p) || st.removed[p.UID] {
			continue
		}
		if indexed(st.job) && !validIndex(p, st.job) {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !st.uncSucceeded[p.UID]:
			succeeded = append(succeeded, p)
		case podFailed(p, st.job) && !st.uncFailed[p.UID]:
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// manage creates or deletes pods so that the right number run, and returns
// the number of active pods then.
func (c *Controller) manage(ctx context.Context, st *state) (int32, error) {
	job := st.job
	n := int32(len(st.active))
	if suspended(job) {
		removalOrder(st.active, c.clock.Now())
		deleted, deletedReady, err := c.deletePods(ctx, st, st.active, true)
		st.terminating += int32(deleted)
		st.ready -= deletedReady
		return n - int32(deleted), err
	}
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	var want int32
	switch {
	case job.Spec.Completions == nil && st.succeeded > 0:
		want = n // let the running pods finish
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = max(min(*job.Spec.Completions-st.succeeded, parallelism), 0)
	}

	var excess []*corev1.Pod
	rest := st.active
	if indexed(job) {
		excess, rest = surplusIndexed(job, st.active, c.clock.Now())
	}
	if extra := int(n-want) - len(excess); extra > 0 {
		removalOrder(rest, c.clock.Now())
		excess = append(excess, rest[:min(extra, len(rest))]...)
	}
	if len(excess) > 0 {
		excess = excess[:min(len(excess), maxPodChangesPerSync)]
		deleted, deletedReady, err := c.deletePods(ctx, st, excess, true)
		st.terminating += int32(deleted)
		st.ready -= deletedReady
		return n - int32(deleted), err
	}

	blocked := int32(0)
	if onlyReplaceFailed(job) {
		blocked = st.terminating
	}
	diff := want - blocked - n
	if diff <= 0 {
		return n, nil
	}
	if wait := st.backoff.remaining(c.clock, c.opts.BackoffBase, c.opts.BackoffMax); wait > 0 {
		c.enqueueAfter(st.key, wait)
		return n, nil
	}
	diff = min(diff, maxPodChangesPerSync)
	indexes := make([]int, diff)
	for i := range indexes {
		indexes[i] = -1
	}
	if indexed(job) {
		busy := map[int]bool{}
		for _, p := range st.active {
			busy[completionIndex(p)] = true
		}
		indexes = firstPending(st.done, busy, int(diff), int(*job.Spec.Completions))
	}
	created, err := c.createPods(ctx, st, indexes)
	return n + int32(created), err
}

// surplusIndexed splits an Indexed Job's active pods into those to remove
// (no valid index, or a second pod for an index) and the rest.
func surplusIndexed(job *batchv1.Job, pods []*corev1.Pod, now time.Time) (surplus, rest []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	for _, p := range pods {
		if !validIndex(p, job) {
			surplus = append(surplus, p)
			continue
		}
		ix := completionIndex(p)
		byIndex[ix] = append(byIndex[ix], p)
	}
	for _, group := range byIndex {
		removalOrder(group, now)
		// Keep the most advanced pod of each index.
		surplus = append(surplus, group[:len(group)-1]...)
		rest = append(rest, group[len(group)-1])
	}
	return surplus, rest
}

// setSuspended keeps the Suspended condition in step with spec.suspend and
// reports whether it changed. Resuming restarts the deadline clock.
func (c *Controller) setSuspended(job *batchv1.Job, now time.Time) bool {
	cond := findCondition(job, batchv1.JobSuspended)
	if suspended(job) {
		if cond != nil && cond.Status == corev1.ConditionTrue {
			return false
		}
		setCondition(job, newCondition(batchv1.JobSuspended, "JobSuspended", "Job suspended", now), corev1.ConditionTrue)
		c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
		return true
	}
	if cond == nil || cond.Status == corev1.ConditionFalse {
		return false
	}
	setCondition(job, newCondition(batchv1.JobSuspended, "JobResumed", "Job resumed", now), corev1.ConditionFalse)
	c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
	job.Status.StartTime = &metav1.Time{Time: now}
	return true
}

// pastDeadline reports whether a running Job has been active longer than
// activeDeadlineSeconds.
func (c *Controller) pastDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || suspended(job) {
		return false
	}
	return c.clock.Since(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

// pastBackoffLimitOnFailure counts container restarts of running pods for
// restartPolicy OnFailure, where pods do not fail but restart.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			restarts += cs.RestartCount
		}
	}
	limit := ptr.Deref(job.Spec.BackoffLimit, 6)
	if limit == 0 {
		return restarts > 0
	}
	return restarts >= limit
}

// controlled lists the pods the cache shows the Job controlling.
func (c *Controller) controlled(job *batchv1.Job) []*corev1.Pod {
	objs, err := c.podIndexer.ByIndex(podsByController, string(job.UID))
	if err != nil {
		// No index (the informer had started before New): scan.
		all, _ := c.pods.Pods(job.Namespace).List(labels.Everything())
		objs = objs[:0]
		for _, p := range all {
			objs = append(objs, p)
		}
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.Namespace == job.Namespace && metav1.IsControlledBy(p, job) {
			pods = append(pods, p)
		}
	}
	return pods
}

// podsOf returns the pods the Job controls, after adopting orphans its
// selector matches (they get the tracking finalizer) and releasing pods
// that no longer match, as upstream does.
func (c *Controller) podsOf(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: selector: %w", job.Namespace, job.Name, err)
	}
	pods := c.controlled(job)
	claim := false
	for _, p := range pods {
		claim = claim || !sel.Matches(labels.Set(p.Labels))
	}
	if !sel.Empty() {
		matching, err := c.pods.Pods(job.Namespace).List(sel)
		if err != nil {
			return nil, err
		}
		for _, p := range matching {
			if metav1.GetControllerOfNoCopy(p) == nil && p.DeletionTimestamp == nil {
				pods = append(pods, p)
				claim = true
			}
		}
	}
	if !claim {
		return pods, nil
	}
	m := &podcontrol.RefManager{Owner: job, Kind: controllerKind, Selector: sel,
		CanAdopt: podcontrol.RecheckDeletion(job, func(ctx context.Context) (metav1.Object, error) {
			return c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		})}
	claimed, claimErr := m.ClaimPods(ctx, c.client, pods)
	for i, p := range claimed {
		if metav1.IsControlledBy(p, job) || hasTrackingFinalizer(p) {
			continue
		}
		// Adopted just now: track it like the Job's own pods.
		if err := c.addFinalizer(ctx, p); err != nil {
			claimErr = errors.Join(claimErr, err)
			continue
		}
		claimed[i] = p.DeepCopy()
		claimed[i].Finalizers = append(claimed[i].Finalizers, batchv1.JobTrackingFinalizer)
	}
	return claimed, claimErr
}

// stale reports whether the cached Job is older than a status this
// controller wrote.
func (c *Controller) stale(key string, job *batchv1.Job) bool {
	v, ok := c.written.Load(key)
	if !ok {
		return false
	}
	w := v.(written)
	if w.uid != job.UID {
		c.written.Delete(key)
		return false
	}
	have, err1 := strconv.ParseUint(job.ResourceVersion, 10, 64)
	if err1 != nil || have >= w.rv {
		c.written.CompareAndDelete(key, v)
		return false
	}
	return true
}

type written struct {
	uid types.UID
	rv  uint64
}

// updateStatus writes the Job's status (failing on a conflict, so a sync
// never overwrites a newer status) and returns the stored Job.
func (c *Controller) updateStatus(ctx context.Context, key string, job *batchv1.Job) (*batchv1.Job, error) {
	out, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return job, fmt.Errorf("update status of job %s: %w", key, err)
	}
	if rv, err := strconv.ParseUint(out.ResourceVersion, 10, 64); err == nil {
		c.written.Store(key, written{uid: out.UID, rv: rv})
	}
	return out, nil
}

func suspended(job *batchv1.Job) bool { return ptr.Deref(job.Spec.Suspend, false) }

func uidSet(uids []types.UID) map[types.UID]bool {
	m := make(map[types.UID]bool, len(uids))
	for _, u := range uids {
		m[u] = true
	}
	return m
}
