package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

// sync reconciles one ReplicaSet: claim its pods, create or delete pods
// when the view of them is known to be current, and report the status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation refuses these; there is nothing sensible to do.
		return nil
	}
	// Read expectations before the pods: an observation landing in
	// between then errs on the side of waiting.
	current := c.exp.Satisfied(key)
	all, err := c.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	for _, p := range all {
		if podcontrol.IsActive(p) {
			active = append(active, p)
		}
	}
	// Requests a sync starts are completed even if ctx ends: a request
	// abandoned half-way may still land after a successor controller has
	// looked. ctx only keeps new pod creations from starting.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	pods, err := c.claim(wctx, rs, selector, active)
	if err != nil {
		return err
	}
	var manageErr error
	if current && rs.DeletionTimestamp == nil {
		manageErr = c.manage(ctx, wctx, key, rs, pods)
	}
	now := c.opts.Clock.Now()
	if err := c.updateStatus(wctx, rs, status(rs, pods, manageErr, now)); err != nil {
		return errors.Join(manageErr, err)
	}
	if manageErr != nil {
		return manageErr
	}
	if d, ok := nextAvailable(rs, pods, now); ok {
		c.requeueAfter(key, d)
	}
	return nil
}

// claim returns the active pods rs controls, adopting and releasing as
// its selector says.
func (c *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	m := &podcontrol.RefManager{
		Owner:    rs,
		Kind:     kind,
		Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(rs, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		}),
	}
	return m.ClaimPods(ctx, c.client, pods)
}

// manage creates or deletes pods until rs has spec.replicas of them. It
// sends requests with wctx, and starts no more creations once ctx ends.
func (c *Controller) manage(ctx, wctx context.Context, key string, rs *appsv1.ReplicaSet, pods []*corev1.Pod) error {
	want := int(ptrValue(rs.Spec.Replicas))
	switch diff := len(pods) - want; {
	case diff < 0:
		n := min(-diff, c.opts.BurstReplicas)
		c.exp.ExpectCreations(key, n)
		ref := metav1.NewControllerRef(rs, kind)
		created, err := podcontrol.SlowStartBatch(n, 1, func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			_, err := c.pods.CreatePod(wctx, &rs.Spec.Template, rs, ref)
			return err
		})
		for range n - created {
			c.exp.CreationObserved(key)
		}
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case diff > 0:
		n := min(diff, c.opts.BurstReplicas)
		victims := c.podsToDelete(rs, pods, n)
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podKey(p)
		}
		c.exp.ExpectDeletions(key, keys)
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, p := range victims {
			wg.Go(func() {
				if err := c.pods.DeletePod(wctx, p, rs); err != nil {
					c.exp.DeletionObserved(key, podKey(p))
					if !apierrors.IsNotFound(err) {
						errs[i] = err
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

// podsToDelete picks the n pods upstream would delete first, counting
// co-location against the pods of rs's siblings (ReplicaSets with the
// same controller, e.g. one Deployment's) as well.
func (c *Controller) podsToDelete(rs *appsv1.ReplicaSet, pods []*corev1.Pod, n int) []*corev1.Pod {
	related := pods
	if owner := metav1.GetControllerOfNoCopy(rs); owner != nil {
		related = c.siblingPods(rs, owner)
	}
	ranked := append([]*corev1.Pod(nil), pods...)
	podcontrol.SortForDeletion(ranked, related, c.opts.Clock.Now())
	return ranked[:n]
}

// siblingPods lists the pods controlled by any ReplicaSet that owner
// controls.
func (c *Controller) siblingPods(rs *appsv1.ReplicaSet, owner *metav1.OwnerReference) []*corev1.Pod {
	sets, _ := c.rsLister.ReplicaSets(rs.Namespace).List(labels.Everything())
	uids := map[string]bool{}
	for _, s := range sets {
		if ref := metav1.GetControllerOfNoCopy(s); ref != nil && ref.UID == owner.UID {
			uids[string(s.UID)] = true
		}
	}
	all, _ := c.podLister.Pods(rs.Namespace).List(labels.Everything())
	var related []*corev1.Pod
	for _, p := range all {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && uids[string(ref.UID)] {
			related = append(related, p)
		}
	}
	return related
}

// status computes rs's status from its pods; manageErr, if any, becomes
// the ReplicaFailure condition.
func status(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	st := appsv1.ReplicaSetStatus{
		Replicas:           int32(len(pods)),
		ObservedGeneration: rs.Generation,
		Conditions:         rs.Status.Conditions,
	}
	fully := labels.SelectorFromSet(rs.Spec.Template.Labels)
	for _, p := range pods {
		if fully.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if podcontrol.IsReady(p) {
			st.ReadyReplicas++
			if podcontrol.IsAvailable(p, rs.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
	}
	has := false
	for _, cond := range st.Conditions {
		has = has || cond.Type == appsv1.ReplicaSetReplicaFailure
	}
	switch {
	case manageErr != nil && !has:
		reason := "FailedCreate"
		if len(pods) > int(ptrValue(rs.Spec.Replicas)) {
			reason = "FailedDelete"
		}
		st.Conditions = append(append([]appsv1.ReplicaSetCondition(nil), st.Conditions...), appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error(),
		})
	case manageErr == nil && has:
		var keep []appsv1.ReplicaSetCondition
		for _, cond := range st.Conditions {
			if cond.Type != appsv1.ReplicaSetReplicaFailure {
				keep = append(keep, cond)
			}
		}
		st.Conditions = keep
	}
	return st
}

// updateStatus writes st when it differs from what rs has. A conflict
// (rs changed meanwhile) is returned: the change requeues rs anyway.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
	if equality.Semantic.DeepEqual(rs.Status, st) {
		return nil
	}
	next := rs.DeepCopy()
	next.Status = st
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update status of replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}

// nextAvailable returns how long until the next ready pod of rs counts
// as available, if one is waiting out minReadySeconds.
func nextAvailable(rs *appsv1.ReplicaSet, pods []*corev1.Pod, now time.Time) (time.Duration, bool) {
	if rs.Spec.MinReadySeconds == 0 {
		return 0, false
	}
	var next time.Duration
	found := false
	for _, p := range pods {
		at, ready := podcontrol.AvailableAt(p, rs.Spec.MinReadySeconds)
		if !ready || podcontrol.IsAvailable(p, rs.Spec.MinReadySeconds, now) {
			continue
		}
		// Availability needs the moment strictly past; a little slack
		// keeps the requeue from landing exactly on it.
		d := max(at.Sub(now), 0) + 10*time.Millisecond
		if !found || d < next {
			next, found = d, true
		}
	}
	return next, found
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
