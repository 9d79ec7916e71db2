package cronjob

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// sync reconciles one CronJob and returns when to look at it again (nil:
// only when something changes).
func (c *Controller) sync(ctx context.Context, key string) (*time.Time, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil
	}
	cached, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.written.Delete(key)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.stale(key, cached) {
		return nil, nil
	}
	jobs := c.jobsOf(cached)
	cj := cached.DeepCopy()
	requeue, update, syncErr := c.syncCronJob(ctx, cj, jobs)
	if c.cleanupFinished(ctx, cj, jobs) {
		update = true
	}
	if update {
		out, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{})
		if err != nil {
			return requeue, fmt.Errorf("update status of cronjob %s: %w", key, err)
		}
		if rv, err := strconv.ParseUint(out.ResourceVersion, 10, 64); err == nil {
			c.written.Store(key, written{uid: out.UID, rv: rv})
		}
	}
	return requeue, syncErr
}

type written struct {
	uid types.UID
	rv  uint64
}

// stale reports whether the cached CronJob is older than a status this
// controller wrote; the write's event brings it back.
func (c *Controller) stale(key string, cj *batchv1.CronJob) bool {
	v, ok := c.written.Load(key)
	if !ok {
		return false
	}
	w := v.(written)
	have, err := strconv.ParseUint(cj.ResourceVersion, 10, 64)
	if w.uid != cj.UID || err != nil || have >= w.rv {
		c.written.CompareAndDelete(key, v)
		return false
	}
	return true
}

// syncCronJob brings the CronJob's status in line with its Jobs and
// starts the Job for the latest due time, if any. It returns when to sync
// again and whether the status changed.
func (c *Controller) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (*time.Time, bool, error) {
	now := c.clock.Now()
	update := false
	children := map[types.UID]bool{}
	for _, j := range jobs {
		children[j.UID] = true
		isActive := inActive(cj, j.UID)
		done, cond := jobFinished(j)
		switch {
		case !isActive && !done && j.DeletionTimestamp == nil:
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
			cj.Status.Active = append(cj.Status.Active, jobRef(j))
			update = true
		case isActive && done:
			removeActive(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, status: %v", j.Name, cond)
			update = true
		}
		if done && cond == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if last := cj.Status.LastSuccessfulTime; last == nil || j.Status.CompletionTime.After(last.Time) {
				cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
				update = true
			}
		}
	}
	// Active Jobs the cache does not have: gone, unless the server says
	// otherwise.
	for _, ref := range slices.Clone(cj.Status.Active) {
		if children[ref.UID] {
			continue
		}
		j, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || err == nil && j.UID != ref.UID:
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			removeActive(cj, ref.UID)
			update = true
		case err != nil:
			return nil, update, fmt.Errorf("get job %s/%s: %w", ref.Namespace, ref.Name, err)
		}
	}

	if cj.DeletionTimestamp != nil {
		return nil, update, nil
	}
	loc := time.Local
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return nil, update, nil
		}
		loc = l
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return nil, update, nil
	}
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnsupportedSchedule", "CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
	}
	sched, err := ParseSchedule(cj.Spec.Schedule, loc)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return nil, update, nil
	}
	scheduled, missed, err := mostRecent(cj, now, sched, true)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return nil, update, nil
	}
	next := nextRun(cj, now, sched)
	if scheduled == nil {
		return next, update, nil
	}
	if missed == manyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return next, update, nil
	}
	name := jobName(cj, *scheduled)
	if slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.Name == name }) ||
		cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(*scheduled) {
		return next, update, nil // this time has run
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, update, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range slices.Clone(cj.Status.Active) {
			if err := c.deleteJob(ctx, cj, ref.Namespace, ref.Name, ref.UID); err != nil {
				return nil, update, err
			}
			update = true
		}
	}

	job, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, newJob(cj, *scheduled, name), metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, update, err
	case apierrors.IsAlreadyExists(err):
		// Made before, but the status may not say so.
		if job, err = c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, update, fmt.Errorf("get job %s/%s: %w", cj.Namespace, name, err)
		}
		if !metav1.IsControlledBy(job, cj) || inActive(cj, job.UID) {
			return next, update, nil
		}
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return nil, update, fmt.Errorf("create job %s/%s: %w", cj.Namespace, name, err)
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", job.Name)
	}
	cj.Status.Active = append(cj.Status.Active, jobRef(job))
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
	return nextRun(cj, now, sched), true, nil
}

// cleanupFinished deletes the oldest finished Jobs beyond the history
// limits and reports whether the status changed.
func (c *Controller) cleanupFinished(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) bool {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch _, cond := jobFinished(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	update := false
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		slices.SortFunc(h.jobs, byStartTime)
		for _, j := range h.jobs[:len(h.jobs)-int(*h.limit)] {
			if err := c.deleteJob(ctx, cj, j.Namespace, j.Name, j.UID); err == nil {
				update = true
			}
		}
	}
	return update
}

// byStartTime orders Jobs oldest first; Jobs that never started go last,
// names break ties.
func byStartTime(a, b *batchv1.Job) int {
	switch {
	case a.Status.StartTime == nil && b.Status.StartTime != nil:
		return 1
	case a.Status.StartTime != nil && b.Status.StartTime == nil:
		return -1
	case a.Status.StartTime != nil && !a.Status.StartTime.Equal(b.Status.StartTime):
		return a.Status.StartTime.Compare(b.Status.StartTime.Time)
	}
	return strings.Compare(a.Name, b.Name)
}

// deleteJob deletes a Job (its pods follow through the garbage collector)
// and drops it from the active list.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, ns, name string, uid types.UID) error {
	background := metav1.DeletePropagationBackground
	err := c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		return fmt.Errorf("delete job %s/%s: %w", ns, name, err)
	}
	removeActive(cj, uid)
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", name)
	return nil
}

// jobFinished returns whether the Job is Complete or Failed, and which.
func jobFinished(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func inActive(cj *batchv1.CronJob, uid types.UID) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

func removeActive(cj *batchv1.CronJob, uid types.UID) {
	cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", APIVersion: batchv1.SchemeGroupVersion.String(),
		Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion}
}

// jobName names the Job for a scheduled time: the CronJob's name and the
// time in minutes since the epoch.
func jobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// newJob makes the Job for a scheduled time from the CronJob's template.
func newJob(cj *batchv1.CronJob, scheduled time.Time, name string) *batchv1.Job {
	t := cj.Spec.JobTemplate.DeepCopy()
	labels := map[string]string{}
	for k, v := range t.Labels {
		labels[k] = v
	}
	annotations := map[string]string{}
	for k, v := range t.Annotations {
		annotations[k] = v
	}
	// Upstream writes the time in spec.timeZone, or UTC.
	loc, err := time.LoadLocation(ptr.Deref(cj.Spec.TimeZone, ""))
	if err != nil {
		loc = time.UTC
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       cj.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
		Spec: t.Spec,
	}
}
