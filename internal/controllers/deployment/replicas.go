package deployment

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The arithmetic of a rollout, after upstream's deployment utilities.

// resolveFenceposts turns maxSurge (rounded up) and maxUnavailable
// (rounded down) into pod counts for desired replicas. When both come to
// zero, maxUnavailable is 1, so a rollout can always move.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (surge, unavailable int32, err error) {
	zero := intstr.FromInt32(0)
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, zero), int(desired), true)
	if err != nil {
		return 0, 0, err
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, zero), int(desired), false)
	if err != nil {
		return 0, 0, err
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

func isRolling(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

// fenceposts resolves d's rolling-update parameters (none: 0 and 1).
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	var s, u *intstr.IntOrString
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		s, u = ru.MaxSurge, ru.MaxUnavailable
	}
	surge, unavailable, _ = resolveFenceposts(s, u, replicas(d)) // validated by the API server
	return surge, unavailable
}

func replicas(d *appsv1.Deployment) int32 { return ptrValue(d.Spec.Replicas) }

// maxSurge is how many pods a rolling deployment may run above replicas.
func maxSurge(d *appsv1.Deployment) int32 {
	if !isRolling(d) {
		return 0
	}
	s, _ := fenceposts(d)
	return s
}

// maxUnavailable is how many of replicas a rolling deployment may miss.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRolling(d) || replicas(d) == 0 {
		return 0
	}
	_, u := fenceposts(d)
	return min(u, replicas(d))
}

// specReplicas sums the ReplicaSets' spec.replicas.
func specReplicas(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += ptrValue(rs.Spec.Replicas)
		}
	}
	return n
}

// podsAtMost bounds the active pods the ReplicaSets may have right now:
// what each wants, or more while it still reports more (scaled down, its
// pods not yet gone). Skiff scales a new ReplicaSet up against this
// rather than the wanted counts alone, so that surge is an upper bound on
// pods that exist, not only on pods wanted.
func podsAtMost(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += max(ptrValue(rs.Spec.Replicas), rs.Status.Replicas)
		}
	}
	return n
}

// availableAtLeast bounds the available pods from below: what each
// ReplicaSet reports, but no more than it wants (pods it is deleting may
// still be counted in its status).
func availableAtLeast(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += min(ptrValue(rs.Spec.Replicas), rs.Status.AvailableReplicas)
		}
	}
	return n
}

func sumStatus(sets []*appsv1.ReplicaSet, field func(*appsv1.ReplicaSetStatus) int32) int32 {
	var n int32
	for _, rs := range sets {
		if rs != nil {
			n += field(&rs.Status)
		}
	}
	return n
}

// newReplicaSetReplicas is how far the new ReplicaSet may be scaled now.
func newReplicaSetReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	cur := ptrValue(newRS.Spec.Replicas)
	if !isRolling(d) {
		return replicas(d)
	}
	limit := replicas(d) + maxSurge(d)
	have := podsAtMost(all)
	if have >= limit {
		return cur
	}
	return cur + min(limit-have, replicas(d)-cur)
}

// activeSets are those with spec.replicas above zero.
func activeSets(sets []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range sets {
		if rs != nil && ptrValue(rs.Spec.Replicas) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// byCreation sorts oldest first, by name among equals.
func byCreation(sets []*appsv1.ReplicaSet) {
	slices.SortStableFunc(sets, func(a, b *appsv1.ReplicaSet) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

// bySizeThen sorts larger first; among equals newer first when newer,
// older first otherwise.
func bySizeThen(sets []*appsv1.ReplicaSet, newer bool) {
	slices.SortStableFunc(sets, func(a, b *appsv1.ReplicaSet) int {
		if c := cmp.Compare(ptrValue(b.Spec.Replicas), ptrValue(a.Spec.Replicas)); c != 0 {
			return c
		}
		c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		if c == 0 {
			c = cmp.Compare(a.Name, b.Name)
		}
		if newer {
			return -c
		}
		return c
	})
}

// proportion is the share of a scaling of the whole deployment (toAdd
// pods, added of them handed out so far) that rs gets, from the size the
// deployment had when rs last took part (its max-replicas annotation).
func proportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if rs == nil || ptrValue(rs.Spec.Replicas) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := fractionOf(rs, d)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

func fractionOf(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	if replicas(d) == 0 {
		return -ptrValue(rs.Spec.Replicas)
	}
	total := replicas(d) + maxSurge(d)
	annotated, ok := intAnnotation(rs, annMaxReplicas)
	if !ok || annotated == 0 {
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	size := float64(ptrValue(rs.Spec.Replicas)*total) / float64(annotated)
	return int32(math.Round(size)) - ptrValue(rs.Spec.Replicas)
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
