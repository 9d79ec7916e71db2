package deployment

import (
	"context"
	"fmt"
	"math"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons, as upstream (kubectl rollout status and users match
// on them).
const (
	reasonRSUpdated      = "ReplicaSetUpdated"
	reasonFailedRSCreate = "ReplicaSetCreateError"
	reasonNewRSCreated   = "NewReplicaSetCreated"
	reasonFoundNewRS     = "FoundNewReplicaSet"
	reasonNewRSAvailable = "NewReplicaSetAvailable"
	reasonTimedOut       = "ProgressDeadlineExceeded"
	reasonPaused         = "DeploymentPaused"
	reasonResumed        = "DeploymentResumed"
	reasonMinAvailable   = "MinimumReplicasAvailable"
	reasonMinUnavailable = "MinimumReplicasUnavailable"
)

func (s *syncer) condition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	now := metav1.NewTime(s.clock.Now())
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastUpdateTime: now, LastTransitionTime: now}
}

func getCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition puts c into st unless a condition of its type already has
// its status and reason; a condition keeps its transition time while its
// status stays.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var keep []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			keep = append(keep, c)
		}
	}
	st.Conditions = keep
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// checkPausedConditions notes pausing and resuming in the Progressing
// condition, so that time spent paused does not count against the
// progress deadline. A timed-out condition stays.
func (s *syncer) checkPausedConditions(ctx context.Context) error {
	d := s.d
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(&d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut {
		return nil
	}
	pausedNoted := cond != nil && cond.Reason == reasonPaused
	switch {
	case d.Spec.Paused && !pausedNoted:
		setCondition(&d.Status, s.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused"))
	case !d.Spec.Paused && pausedNoted:
		setCondition(&d.Status, s.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed"))
	default:
		return nil
	}
	return s.writeStatus(ctx)
}

// calculateStatus sums the ReplicaSets' status into the Deployment's and
// sets the Available condition.
func (s *syncer) calculateStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	d := s.d
	available := sumStatus(all, func(st *appsv1.ReplicaSetStatus) int32 { return st.AvailableReplicas })
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            sumStatus(all, func(st *appsv1.ReplicaSetStatus) int32 { return st.Replicas }),
		ReadyReplicas:       sumStatus(all, func(st *appsv1.ReplicaSetStatus) int32 { return st.ReadyReplicas }),
		AvailableReplicas:   available,
		UnavailableReplicas: max(specReplicas(all)-available, 0),
		CollisionCount:      d.Status.CollisionCount,
		Conditions:          append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...),
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	if available >= replicas(d)-maxUnavailable(d) {
		setCondition(&st, s.condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinAvailable, "Deployment has minimum availability."))
	} else {
		setCondition(&st, s.condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinUnavailable, "Deployment does not have minimum availability."))
	}
	return st
}

// syncStatus writes the calculated status when it changed.
func (s *syncer) syncStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := s.calculateStatus(all, newRS)
	if equality.Semantic.DeepEqual(s.d.Status, st) {
		return nil
	}
	s.d.Status = st
	return s.writeStatus(ctx)
}

// syncRolloutStatus writes the status during a rollout, with the
// Progressing condition: NewReplicaSetAvailable once complete,
// ReplicaSetUpdated while it moves, ProgressDeadlineExceeded once it has
// not moved for progressDeadlineSeconds. A rollout that is neither done
// nor timed out is looked at again when its deadline would pass.
func (s *syncer) syncRolloutStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	d := s.d
	st := s.calculateStatus(all, newRS)
	if !hasProgressDeadline(d) {
		removeCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := getCondition(&d.Status, appsv1.DeploymentProgressing)
	settled := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !settled {
		name := fmt.Sprintf("Deployment %q", d.Name)
		if newRS != nil {
			name = fmt.Sprintf("ReplicaSet %q", newRS.Name)
		}
		switch {
		case complete(d, &st):
			setCondition(&st, s.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, name+" has successfully progressed."))
		case progressing(d, &st):
			c := s.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, name+" is progressing.")
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			// Same reason, new update time: replace rather than set.
			removeCondition(&st, appsv1.DeploymentProgressing)
			setCondition(&st, c)
		case s.timedOut(d, &st):
			setCondition(&st, s.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, name+" has timed out progressing."))
		}
	}
	if failure := replicaFailure(all, newRS); failure != nil {
		setCondition(&st, *failure)
	} else {
		removeCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	if equality.Semantic.DeepEqual(d.Status, st) {
		s.requeueStuck(&st)
		return nil
	}
	d.Status = st
	return s.writeStatus(ctx)
}

// complete: all replicas updated and available, no old ones left, and the
// latest spec observed.
func complete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	r := replicas(d)
	return st.UpdatedReplicas == r && st.Replicas == r && st.AvailableReplicas == r &&
		st.ObservedGeneration >= d.Generation
}

// progressing: compared with the status the Deployment has, new pods were
// added or became ready or available, or old ones went away.
func progressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// timedOut: the Progressing condition was last updated longer than
// progressDeadlineSeconds ago (or already says so).
func (s *syncer) timedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	c := getCondition(st, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == reasonNewRSAvailable {
		return false
	}
	if c.Reason == reasonTimedOut {
		return true
	}
	deadline := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return deadline.Before(s.clock.Now())
}

// requeueStuck schedules a look at a rollout in flight for when its
// progress deadline passes.
func (s *syncer) requeueStuck(st *appsv1.DeploymentStatus) {
	d := s.d
	c := getCondition(&d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || c == nil || complete(d, st) || c.Reason == reasonTimedOut {
		return
	}
	after := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(s.clock.Now())
	if after < time.Second {
		s.queue().AddRateLimited(s.key)
		return
	}
	// A second more so that the deadline has surely passed (the
	// condition's times are stored to the second).
	s.queue().AddAfter(s.key, after+time.Second)
}

// replicaFailure is the ReplicaFailure condition to copy from the new
// ReplicaSet, or else from any.
func replicaFailure(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	sets := all
	if newRS != nil {
		sets = append([]*appsv1.ReplicaSet{newRS}, all...)
	}
	for _, rs := range sets {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{
					Type: appsv1.DeploymentReplicaFailure, Status: c.Status,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
					Reason: c.Reason, Message: c.Message,
				}
			}
		}
	}
	return nil
}
