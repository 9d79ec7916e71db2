package job

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// finished reports whether the Job is Complete or Failed.
func finished(job *batchv1.Job) bool {
	_, ok := finishedAt(job)
	return ok
}

// finishedAt returns when the Job became Complete or Failed.
func finishedAt(job *batchv1.Job) (time.Time, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// finished records the end of a Job.
func (c *Controller) finished(job *batchv1.Job, cond *batchv1.JobCondition) {
	c.backoff.forget(job.Namespace + "/" + job.Name)
	if cond.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
	} else {
		c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	c.log.Info("job finished", "job", job.Namespace+"/"+job.Name, "condition", cond.Type, "reason", cond.Reason,
		"succeeded", job.Status.Succeeded, "failed", job.Status.Failed)
	if job.Spec.TTLSecondsAfterFinished != nil {
		c.enqueue(job)
	}
}

// syncFinished looks after a Job that is Complete or Failed: pods still
// holding the tracking finalizer lose it, and the Job is deleted once
// ttlSecondsAfterFinished has passed.
func (c *Controller) syncFinished(ctx context.Context, key string, job *batchv1.Job) error {
	c.backoff.forget(key)
	removed := c.removed.pending(key)
	for _, p := range c.controlled(job) {
		if hasTrackingFinalizer(p) && !removed[p.UID] {
			c.orphans.Add(p.Namespace + "/" + p.Name)
		}
	}
	return c.expireTTL(ctx, key, job)
}

// expireTTL deletes a finished Job whose TTL has passed, in the
// foreground as upstream's TTL-after-finished controller does, or
// arranges a sync for when it will have.
func (c *Controller) expireTTL(ctx context.Context, key string, job *batchv1.Job) error {
	left, ok := c.ttlLeft(job)
	if !ok {
		return nil
	}
	if left > 0 {
		c.enqueueAfter(key, left)
		return nil
	}
	// The cache may be behind a TTL the user just raised: decide on the
	// server's copy.
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get job %s: %w", key, err)
	}
	if fresh.UID != job.UID {
		return nil
	}
	if left, ok := c.ttlLeft(fresh); !ok || left > 0 {
		if ok {
			c.enqueueAfter(key, left)
		}
		return nil
	}
	policy := metav1.DeletePropagationForeground
	err = c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete expired job %s: %w", key, err)
	}
	c.log.Info("deleted finished job after its TTL", "job", key)
	return nil
}

// ttlLeft returns how long a finished Job with a TTL still has; ok is
// false when it has no TTL, is not finished or is being deleted.
func (c *Controller) ttlLeft(job *batchv1.Job) (left time.Duration, ok bool) {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return 0, false
	}
	at, done := finishedAt(job)
	if !done {
		return 0, false
	}
	expire := at.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	return expire.Sub(c.clock.Now()), true
}

func newCondition(typ batchv1.JobConditionType, reason, message string, now time.Time) *batchv1.JobCondition {
	t := metav1.NewTime(now)
	return &batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: t, LastTransitionTime: t}
}

func findCondition(job *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == typ {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// setCondition puts cond (with the given status) into the Job's
// conditions, replacing one of its type.
func setCondition(job *batchv1.Job, cond *batchv1.JobCondition, status corev1.ConditionStatus) {
	next := *cond
	next.Status = status
	if cur := findCondition(job, cond.Type); cur != nil {
		*cur = next
		return
	}
	job.Status.Conditions = append(job.Status.Conditions, next)
}
