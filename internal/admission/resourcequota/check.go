package resourcequota

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/internal/admission/resourcequota/usage"
)

// request is one write as the quota check sees it.
type request struct {
	update   bool
	obj, old runtime.Object // old is nil on create
	eval     usage.Evaluator
	now      time.Time
}

// check returns quotas with the request's usage added to status.used, or
// the reason the request does not fit, in upstream's words. quotas are
// not modified. Only the quotas whose status.hard names a resource the
// object charges, and whose scopes all match the object, take part.
func check(quotas []corev1.ResourceQuota, r request) ([]corev1.ResourceQuota, error) {
	var interesting []int
	for i := range quotas {
		q := &quotas[i]
		ok, err := usage.Matches(q, r.eval, r.obj)
		if err != nil {
			return nil, fmt.Errorf("error matching scopes of quota %s, err: %w", q.Name, err)
		}
		if !ok {
			continue
		}
		limited := r.eval.MatchingResources(usage.Names(q.Status.Hard))
		if err := r.eval.Constraints(limited, r.obj); err != nil {
			return nil, fmt.Errorf("failed quota: %s: %w", q.Name, err)
		}
		if !hasUsageStats(q, limited) {
			return nil, fmt.Errorf("status unknown for quota: %s, resources: %s", q.Name, usage.NamesString(limited))
		}
		interesting = append(interesting, i)
	}
	if len(interesting) == 0 {
		return quotas, nil
	}
	in, err := r.eval.Usage(r.obj, r.now)
	if err != nil {
		return nil, err
	}
	if neg := usage.Negative(in); len(neg) > 0 {
		return nil, fmt.Errorf("quota usage is negative for resource(s): %s", usage.NamesString(neg))
	}
	delta := map[int]corev1.ResourceList{}
	for _, i := range interesting {
		delta[i] = in
	}
	if r.update {
		if r.old == nil {
			return nil, errors.New("unable to get previous usage since prior version of object was not found")
		}
		// An update is charged what it adds, in the quotas that already
		// held the old object; the others are charged the whole object.
		if m, err := meta.Accessor(r.old); err == nil && m.GetResourceVersion() != "" {
			prev, err := r.eval.Usage(r.old, r.now)
			if err != nil {
				return nil, err
			}
			d := usage.SubtractNonNegative(in, prev)
			for _, i := range interesting {
				ok, err := usage.Matches(&quotas[i], r.eval, r.old)
				if err != nil {
					return nil, err
				}
				if ok {
					delta[i] = d
				}
			}
		}
	}
	out := make([]corev1.ResourceQuota, len(quotas))
	for i := range quotas {
		out[i] = *quotas[i].DeepCopy()
	}
	for _, i := range interesting {
		d := usage.RemoveZeros(delta[i])
		if len(d) == 0 {
			continue
		}
		q := &out[i]
		hard := usage.Names(q.Status.Hard)
		requested := usage.Mask(d, hard)
		next := usage.Add(q.Status.Used, requested)
		if ok, exceeded := usage.LessThanOrEqual(usage.Mask(next, usage.Names(requested)), q.Status.Hard); !ok {
			return nil, fmt.Errorf("exceeded quota: %s, requested: %s, used: %s, limited: %s", q.Name,
				usage.String(usage.Mask(requested, exceeded)),
				usage.String(usage.Mask(q.Status.Used, exceeded)),
				usage.String(usage.Mask(q.Status.Hard, exceeded)))
		}
		q.Status.Used = next
	}
	return out, nil
}

// hasUsageStats reports whether the quota's status has a used value for
// every limited resource it has a hard value for.
func hasUsageStats(q *corev1.ResourceQuota, limited []corev1.ResourceName) bool {
	for _, n := range limited {
		if _, hard := q.Status.Hard[n]; !hard {
			continue
		}
		if _, used := q.Status.Used[n]; !used {
			return false
		}
	}
	return true
}
