package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// rolloutRecreate scales every old ReplicaSet to zero, waits until none
// of their pods is left running, and only then creates (or scales up) the
// new one.
func (s *syncer) rolloutRecreate(ctx context.Context) error {
	// No new ReplicaSet yet: it must not start before the old pods stop.
	newRS, oldRSs, err := s.replicaSets(ctx, false)
	if err != nil {
		return err
	}
	all := withNew(oldRSs, newRS)
	scaledDown := false
	for _, rs := range activeSets(oldRSs) {
		scaled, _, err := s.scaleTo(ctx, rs, 0)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown || s.oldPodsRunning(newRS, oldRSs) {
		return s.syncRolloutStatus(ctx, all, newRS)
	}
	if newRS == nil {
		if newRS, oldRSs, err = s.replicaSets(ctx, true); err != nil {
			return err
		}
		all = withNew(oldRSs, newRS)
	}
	if _, _, err := s.scaleTo(ctx, newRS, replicas(s.d)); err != nil {
		return err
	}
	if complete(s.d, &s.d.Status) {
		if err := s.cleanup(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncRolloutStatus(ctx, all, newRS)
}

// oldPodsRunning reports whether an old ReplicaSet reports pods, or any
// pod of one is still there and not finished.
func (s *syncer) oldPodsRunning(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) bool {
	if sumStatus(oldRSs, func(st *appsv1.ReplicaSetStatus) int32 { return st.Replicas }) > 0 {
		return true
	}
	old := map[types.UID]bool{}
	for _, rs := range oldRSs {
		if newRS == nil || rs.UID != newRS.UID {
			old[rs.UID] = true
		}
	}
	pods, err := s.podLister.Pods(s.d.Namespace).List(s.selector)
	if err != nil {
		return true
	}
	for _, p := range pods {
		ref := controllerUID(p)
		if !old[ref] {
			continue
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}

func controllerUID(p *corev1.Pod) types.UID {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return r.UID
		}
	}
	return ""
}
