package podcontrol

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Event reasons, as upstream's controllers record them.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// Control creates and deletes a controller's pods and records what it did
// as events on the owner.
type Control struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// NewPod returns the pod a controller creates from template for owner: the
// template's labels, annotations, finalizers and spec, the name prefix
// "<owner>-" for the server to complete, and ref as its controller
// reference.
func NewPod(template *corev1.PodTemplateSpec, owner metav1.Object, ref *metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    owner.GetNamespace(),
			GenerateName: namePrefix(owner.GetName()),
			Labels:       maps.Clone(template.Labels),
			Annotations:  maps.Clone(template.Annotations),
			Finalizers:   slices.Clone(template.Finalizers),
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if ref != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	return pod
}

// namePrefix is "<name>-", or name alone when the dash would make an
// invalid prefix (upstream's rule).
func namePrefix(name string) string {
	prefix := name + "-"
	// A prefix may end in a dash: check it with a character after.
	if len(validation.IsDNS1123Subdomain(prefix+"a")) != 0 {
		return name
	}
	return prefix
}

// CreatePod creates a pod from template for owner (see NewPod) and records
// SuccessfulCreate or FailedCreate on owner. A create refused because the
// namespace is being deleted records nothing.
func (c Control) CreatePod(ctx context.Context, template *corev1.PodTemplateSpec, owner runtime.Object, ref *metav1.OwnerReference) (*corev1.Pod, error) {
	m, err := metaOf(owner)
	if err != nil {
		return nil, err
	}
	pod := NewPod(template, m, ref)
	if len(pod.Labels) == 0 {
		return nil, fmt.Errorf("create pod for %s/%s: the pod template has no labels", m.GetNamespace(), m.GetName())
	}
	created, err := c.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return nil, fmt.Errorf("create pod for %s/%s: %w", m.GetNamespace(), m.GetName(), err)
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return created, nil
}

// DeletePod deletes pod, and only that incarnation of it (its UID is a
// precondition), and records SuccessfulDelete or FailedDelete on owner. A
// pod already gone gives an error for which apierrors.IsNotFound holds
// and records nothing.
func (c Control) DeletePod(ctx context.Context, pod *corev1.Pod, owner runtime.Object) error {
	err := c.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsConflict(err) {
		// The UID precondition failed: this pod is gone, a namesake stands.
		err = apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	case err != nil:
		c.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
	return nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("owner %T has no object metadata", obj)
	}
	return m, nil
}

// SlowStartBatch calls fn count times: in parallel batches that start at
// initial calls and double, stopping after the first batch in which a call
// failed. A controller that cannot create pods (a quota, a bad template)
// then sends a handful of requests, not hundreds. It returns how many
// calls succeeded and the first error.
func SlowStartBatch(count, initial int, fn func() error) (int, error) {
	done := 0
	for batch := min(count, max(initial, 1)); batch > 0; batch = min(2*batch, count-done) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		done += batch - len(errs)
		if err, failed := <-errs; failed {
			return done, err
		}
	}
	return done, nil
}
