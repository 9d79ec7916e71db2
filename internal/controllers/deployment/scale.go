package deployment

import (
	"context"
	"fmt"
	"math"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scaleOnly handles a scaling event or a paused Deployment: resize the
// ReplicaSets without rolling anything out.
func (s *syncer) scaleOnly(ctx context.Context) error {
	newRS, oldRSs, err := s.replicaSets(ctx, false)
	if err != nil {
		return err
	}
	if err := s.scale(ctx, newRS, oldRSs); err != nil {
		return err
	}
	if s.d.Spec.Paused {
		if err := s.cleanup(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncStatus(ctx, withNew(oldRSs, newRS), newRS)
}

// scale resizes the ReplicaSets to the Deployment's replicas: the only
// active one (or the newest) takes them all; a saturated new one leaves
// the old at zero; otherwise, while rolling, the change is shared out in
// proportion to the sizes the ReplicaSets had (upstream's proportional
// scaling), larger ones first.
func (s *syncer) scale(ctx context.Context, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	d := s.d
	if only := activeOrLatest(newRS, oldRSs); only != nil {
		if ptrValue(only.Spec.Replicas) == replicas(d) {
			return nil
		}
		_, _, err := s.scaleTo(ctx, only, replicas(d))
		return err
	}
	if isSaturated(d, newRS) {
		for _, old := range activeSets(oldRSs) {
			if _, _, err := s.scaleTo(ctx, old, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRolling(d) {
		return nil
	}
	all := activeSets(withNew(oldRSs, newRS))
	var allowed int32
	if replicas(d) > 0 {
		allowed = replicas(d) + maxSurge(d)
	}
	toAdd := allowed - specReplicas(all)
	op := ""
	switch {
	case toAdd > 0:
		bySizeThen(all, true)
		op = "up"
	case toAdd < 0:
		bySizeThen(all, false)
		op = "down"
	}
	sizes := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		p := proportion(rs, d, toAdd, added)
		sizes[i] = ptrValue(rs.Spec.Replicas) + p
		added += p
	}
	if len(all) > 0 && toAdd != 0 {
		sizes[0] = max(sizes[0]+toAdd-added, 0)
	}
	for i, rs := range all {
		if _, _, err := s.resize(ctx, rs, sizes[i], op); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest returns the only active ReplicaSet, or the newest when
// none is active; nil when several are.
func activeOrLatest(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(oldRSs) == 0 {
		return nil
	}
	old := slices.Clone(oldRSs)
	byCreation(old)
	slices.Reverse(old)
	switch active := activeSets(withNew(old, newRS)); len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		return old[0]
	case 1:
		return active[0]
	}
	return nil
}

// isSaturated reports whether the new ReplicaSet holds all the replicas,
// all available, and was sized for exactly this many.
func isSaturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := intAnnotation(rs, annDesiredReplicas)
	return ok && desired == replicas(d) && ptrValue(rs.Spec.Replicas) == replicas(d) &&
		rs.Status.AvailableReplicas == replicas(d)
}

// scaleTo resizes rs to n, recording a ScalingReplicaSet event.
func (s *syncer) scaleTo(ctx context.Context, rs *appsv1.ReplicaSet, n int32) (bool, *appsv1.ReplicaSet, error) {
	cur := ptrValue(rs.Spec.Replicas)
	if cur == n {
		return false, rs, nil
	}
	op := "up"
	if n < cur {
		op = "down"
	}
	return s.resize(ctx, rs, n, op)
}

// resize writes rs's replicas and the Deployment's size annotations when
// either is out of date.
func (s *syncer) resize(ctx context.Context, rs *appsv1.ReplicaSet, n int32, op string) (bool, *appsv1.ReplicaSet, error) {
	d := s.d
	cur := ptrValue(rs.Spec.Replicas)
	sizeChanged := cur != n
	if !sizeChanged && !replicasAnnotationsStale(rs, replicas(d), replicas(d)+maxSurge(d)) {
		return false, rs, nil
	}
	next := rs.DeepCopy()
	next.Spec.Replicas = &n
	setReplicasAnnotations(next, replicas(d), replicas(d)+maxSurge(d))
	updated, err := s.updateReplicaSet(ctx, next)
	if err != nil {
		return false, rs, err
	}
	if sizeChanged {
		s.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, cur, n)
	}
	return sizeChanged, updated, nil
}

// updateReplicaSet writes rs (optimistically: it carries the version it
// was read at) and notes the write for the freshness check.
func (s *syncer) updateReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	updated, err := s.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	s.fresh.record(s.key, updated)
	return updated, nil
}

// cleanup deletes the oldest old ReplicaSets beyond revisionHistoryLimit,
// skipping any that still has or wants pods or whose controller has not
// caught up with it.
func (s *syncer) cleanup(ctx context.Context, oldRSs []*appsv1.ReplicaSet) error {
	d := s.d
	limit := d.Spec.RevisionHistoryLimit
	if limit == nil || *limit == math.MaxInt32 {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	extra := len(alive) - int(*limit)
	if extra <= 0 {
		return nil
	}
	slices.SortStableFunc(alive, func(a, b *appsv1.ReplicaSet) int {
		if ra, rb := revision(a.Annotations), revision(b.Annotations); ra != rb {
			return int(ra - rb)
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	for _, rs := range alive[:extra] {
		if rs.Status.Replicas != 0 || ptrValue(rs.Spec.Replicas) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		err := s.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &rs.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
	}
	return nil
}
