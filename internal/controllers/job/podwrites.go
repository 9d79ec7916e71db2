package job

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

const (
	// maxPodChangesPerSync bounds the pods one sync creates or deletes.
	maxPodChangesPerSync = 500
	// parallelRequests bounds concurrent API calls of one sync.
	parallelRequests = 16
)

// createPods creates one pod per entry of indexes (-1: no completion
// index), in slow-start batches that stop at the first failing batch, and
// returns the number created.
func (c *Controller) createPods(ctx context.Context, st *state, indexes []int) (int, error) {
	c.expect.ExpectCreations(st.key, len(indexes))
	var next atomic.Int64
	created, err := podcontrol.SlowStartBatch(len(indexes), 1, func() error {
		ix := indexes[next.Add(1)-1]
		if err := c.createPod(ctx, st, ix); err != nil {
			c.expect.CreationObserved(st.key)
			return err
		}
		return nil
	})
	// Pods never tried will never be seen either.
	for range len(indexes) - int(next.Load()) {
		c.expect.CreationObserved(st.key)
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// The namespace's deletion takes the Job with it.
		err = nil
	}
	return created, err
}

func (c *Controller) createPod(ctx context.Context, st *state, index int) error {
	job := st.job
	pod, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, newPod(job, index), metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(job, corev1.EventTypeWarning, podcontrol.ReasonFailedCreate, "Error creating: %v", err)
		}
		return fmt.Errorf("create pod for job %s: %w", st.key, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, podcontrol.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
	return nil
}

// deletePods deletes pods, first removing their tracking finalizer when
// release is set (pods that should not count, as when a Job is suspended
// or scaled down). Without release the finalizer stays, so the pods count
// as failed once deleted. It returns how many were deleted and how many of
// those were ready.
func (c *Controller) deletePods(ctx context.Context, st *state, pods []*corev1.Pod, release bool) (int, int32, error) {
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = p.Namespace + "/" + p.Name
		if release && hasTrackingFinalizer(p) {
			c.removed.expect(st.key, p.UID)
		}
	}
	// Scaling down must be seen before pods are created again; a Job that
	// is ending creates none, so its deletions are not waited for (nor do
	// they replace creations still expected).
	if release && len(pods) > 0 {
		c.expect.ExpectDeletions(st.key, keys)
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		deleted int
		ready   int32
		errs    []error
		sem     = make(chan struct{}, parallelRequests)
	)
	for i, p := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.removePod(ctx, st, p, release)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if release {
					c.expect.DeletionObserved(st.key, keys[i])
					c.removed.observed(st.key, p.UID)
				}
				errs = append(errs, err)
				return
			}
			deleted++
			if podReady(p) {
				ready++
			}
		})
	}
	wg.Wait()
	return deleted, ready, errors.Join(errs...)
}

func (c *Controller) removePod(ctx context.Context, st *state, pod *corev1.Pod, release bool) error {
	if release && hasTrackingFinalizer(pod) {
		if err := c.removeFinalizer(ctx, pod); err != nil {
			return err
		}
	}
	err := c.control.DeletePod(ctx, pod, st.job)
	if apierrors.IsNotFound(err) {
		// Gone already: its delete event may have passed before the
		// expectation was set.
		c.expect.DeletionObserved(st.key, pod.Namespace+"/"+pod.Name)
		return nil
	}
	return err
}
