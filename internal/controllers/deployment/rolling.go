package deployment

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// rolloutRolling takes one step of a rolling update: scale the new
// ReplicaSet up as far as maxSurge allows or, failing that, scale old ones
// down as far as maxUnavailable allows; once complete, prune history.
func (s *syncer) rolloutRolling(ctx context.Context) error {
	newRS, oldRSs, err := s.replicaSets(ctx, true)
	if err != nil {
		return err
	}
	all := withNew(oldRSs, newRS)
	scaledUp, err := s.reconcileNewReplicaSet(ctx, all, newRS)
	if err != nil {
		return err
	}
	if scaledUp {
		return s.syncRolloutStatus(ctx, all, newRS)
	}
	scaledDown, err := s.reconcileOldReplicaSets(ctx, all, activeSets(oldRSs), newRS)
	if err != nil {
		return err
	}
	if scaledDown {
		return s.syncRolloutStatus(ctx, all, newRS)
	}
	if complete(s.d, &s.d.Status) {
		if err := s.cleanup(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncRolloutStatus(ctx, all, newRS)
}

func (s *syncer) reconcileNewReplicaSet(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	d := s.d
	cur := ptrValue(newRS.Spec.Replicas)
	switch {
	case cur == replicas(d):
		return false, nil
	case cur > replicas(d):
		scaled, _, err := s.scaleTo(ctx, newRS, replicas(d))
		return scaled, err
	}
	scaled, _, err := s.scaleTo(ctx, newRS, newReplicaSetReplicas(d, all, newRS))
	return scaled, err
}

// reconcileOldReplicaSets scales old ReplicaSets down: first their
// unavailable pods (removing them costs no availability), then available
// ones while more than replicas-maxUnavailable pods stay available. The
// new ReplicaSet's unavailable pods are held against the budget, so that
// a rollout of a broken template does not eat into the old pods.
func (s *syncer) reconcileOldReplicaSets(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	d := s.d
	if specReplicas(oldRSs) == 0 {
		return false, nil
	}
	minAvailable := replicas(d) - maxUnavailable(d)
	newWant := ptrValue(newRS.Spec.Replicas)
	newUnavailable := newWant - min(newWant, newRS.Status.AvailableReplicas)
	maxScaledDown := specReplicas(all) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	oldRSs, cleaned, err := s.cleanupUnhealthyReplicas(ctx, oldRSs, maxScaledDown)
	if err != nil {
		return false, err
	}
	scaled, err := s.scaleDownOldForRolling(ctx, withNew(oldRSs, newRS), oldRSs)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

// cleanupUnhealthyReplicas scales old ReplicaSets down by their
// unavailable pods, oldest first, at most limit in all. The replicaset
// controller deletes not-ready pods first, so no available pod goes.
func (s *syncer) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, limit int32) ([]*appsv1.ReplicaSet, int32, error) {
	oldRSs = slices.Clone(oldRSs)
	byCreation(oldRSs)
	var total int32
	for i, rs := range oldRSs {
		if total >= limit {
			break
		}
		want := ptrValue(rs.Spec.Replicas)
		unhealthy := want - min(want, rs.Status.AvailableReplicas)
		if want == 0 || unhealthy == 0 {
			continue
		}
		n := min(limit-total, unhealthy)
		_, updated, err := s.scaleTo(ctx, rs, want-n)
		if err != nil {
			return nil, total, err
		}
		total += n
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

// scaleDownOldForRolling scales old ReplicaSets down, oldest first, by
// the available pods beyond replicas-maxUnavailable.
func (s *syncer) scaleDownOldForRolling(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet) (int32, error) {
	d := s.d
	minAvailable := replicas(d) - maxUnavailable(d)
	available := availableAtLeast(all)
	if available <= minAvailable {
		return 0, nil
	}
	oldRSs = slices.Clone(oldRSs)
	byCreation(oldRSs)
	budget := available - minAvailable
	var total int32
	for _, rs := range oldRSs {
		if total >= budget {
			break
		}
		want := ptrValue(rs.Spec.Replicas)
		if want == 0 {
			continue
		}
		n := min(want, budget-total)
		if _, _, err := s.scaleTo(ctx, rs, want-n); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
