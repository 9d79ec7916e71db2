package hpa

import (
	"math"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// history is what the controller remembers of each HPA between passes:
// its recent recommendations (for stabilization) and scale events (for
// behavior policies). It is lost on restart, as upstream's is.
type history struct {
	mu              sync.Mutex
	recommendations map[string][]recommendation
	upEvents        map[string][]scaleEvent
	downEvents      map[string][]scaleEvent
}

type recommendation struct {
	replicas int32
	at       time.Time
}

type scaleEvent struct {
	change int32
	at     time.Time
}

func newHistory() *history {
	return &history{recommendations: map[string][]recommendation{}, upEvents: map[string][]scaleEvent{}, downEvents: map[string][]scaleEvent{}}
}

func (h *history) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.recommendations, key)
	delete(h.upEvents, key)
	delete(h.downEvents, key)
}

// seed makes the current replica count the first recommendation, so a
// fresh controller does not scale down at once.
func (h *history) seed(key string, current int32, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recommendations[key] == nil {
		h.recommendations[key] = []recommendation{{current, now}}
	}
}

// record stores rec, reusing a slot older than both cutoffs.
func (h *history) record(key string, rec int32, now, upCutoff, downCutoff time.Time) {
	recs := h.recommendations[key]
	for i, r := range recs {
		if r.at.Before(upCutoff) && r.at.Before(downCutoff) {
			recs[i] = recommendation{rec, now}
			return
		}
	}
	h.recommendations[key] = append(recs, recommendation{rec, now})
}

// stabilize is upstream's default (no behavior) stabilization: the
// highest recommendation within the scale-down window, so scale-down
// follows the highest recent need while scale-up is immediate.
func (h *history) stabilize(key string, desired int32, window time.Duration, now time.Time) int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	cutoff := now.Add(-window)
	highest := desired
	for _, r := range h.recommendations[key] {
		if r.at.After(cutoff) {
			highest = max(highest, r.replicas)
		}
	}
	h.record(key, desired, now, cutoff, cutoff)
	return highest
}

// stabilizeWithBehavior bounds desired by the lowest recommendation in the
// scale-up window and the highest in the scale-down window, and says which
// window held it back.
func (h *history) stabilizeWithBehavior(key string, current, desired int32, b *autoscalingv2.HorizontalPodAutoscalerBehavior, now time.Time) (int32, string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	upCutoff := now.Add(-time.Duration(ptr.Deref(b.ScaleUp.StabilizationWindowSeconds, 0)) * time.Second)
	downCutoff := now.Add(-time.Duration(ptr.Deref(b.ScaleDown.StabilizationWindowSeconds, 0)) * time.Second)
	up, down := desired, desired
	for _, r := range h.recommendations[key] {
		if r.at.After(upCutoff) {
			up = min(up, r.replicas)
		}
		if r.at.After(downCutoff) {
			down = max(down, r.replicas)
		}
	}
	rec := min(max(current, up), down)
	h.record(key, desired, now, upCutoff, downCutoff)
	if desired >= current {
		return rec, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	}
	return rec, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
}

// scaled records a rescale from current to desired for the behavior
// policies, dropping events older than the longest policy period.
func (h *history) scaled(key string, b *autoscalingv2.HorizontalPodAutoscalerBehavior, current, desired int32, now time.Time) {
	if b == nil || current == desired {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	events, rules, change := h.upEvents, b.ScaleUp, desired-current
	if desired < current {
		events, rules, change = h.downEvents, b.ScaleDown, current-desired
	}
	longest := int32(0)
	if rules != nil {
		for _, p := range rules.Policies {
			longest = max(longest, p.PeriodSeconds)
		}
	}
	cutoff := now.Add(-time.Duration(longest) * time.Second)
	kept := events[key][:0]
	for _, e := range events[key] {
		if e.at.After(cutoff) {
			kept = append(kept, e)
		}
	}
	events[key] = append(kept, scaleEvent{change, now})
}

// changedWithin sums the changes of events within the last period seconds.
func changedWithin(events []scaleEvent, periodSeconds int32, now time.Time) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var sum int32
	for _, e := range events {
		if e.at.After(cutoff) {
			sum += e.change
		}
	}
	return sum
}

func larger(a, b int32) int32  { return max(a, b) }
func smaller(a, b int32) int32 { return min(a, b) }

// scaleUpLimit is the most replicas the scale-up policies allow now.
func (h *history) scaleUpLimit(key string, current int32, rules *autoscalingv2.HPAScalingRules, now time.Time) int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	sel := ptr.Deref(rules.SelectPolicy, autoscalingv2.MaxChangePolicySelect)
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := larger, int32(math.MinInt32)
	if sel == autoscalingv2.MinChangePolicySelect {
		pick, result = smaller, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - changedWithin(h.upEvents[key], p.PeriodSeconds, now) + changedWithin(h.downEvents[key], p.PeriodSeconds, now)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is the fewest replicas the scale-down policies allow now.
func (h *history) scaleDownLimit(key string, current int32, rules *autoscalingv2.HPAScalingRules, now time.Time) int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	sel := ptr.Deref(rules.SelectPolicy, autoscalingv2.MaxChangePolicySelect)
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := smaller, int32(math.MaxInt32)
	if sel == autoscalingv2.MinChangePolicySelect {
		pick, result = larger, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - changedWithin(h.upEvents[key], p.PeriodSeconds, now) + changedWithin(h.downEvents[key], p.PeriodSeconds, now)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// limit is a replica count after min/max and rate rules, with the
// ScalingLimited condition's reason and message.
type limit struct {
	replicas        int32
	reason, message string
}

// limitWithoutBehavior applies minReplicas, maxReplicas and upstream's
// fixed scale-up rate (at most double, or 4, per pass).
func limitWithoutBehavior(current, desired, minReplicas, maxReplicas int32) limit {
	scaleUpLimit := int32(math.Max(2*float64(current), 4))
	upper := limit{maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"}
	if maxReplicas > scaleUpLimit {
		upper = limit{scaleUpLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"}
	}
	switch {
	case desired < minReplicas:
		return limit{minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"}
	case desired > upper.replicas:
		return upper
	}
	return limit{desired, "DesiredWithinRange", "the desired count is within the acceptable range"}
}

// limitWithBehavior applies minReplicas, maxReplicas and the behavior's
// scale-up and scale-down policies.
func (h *history) limitWithBehavior(key string, current, desired, minReplicas, maxReplicas int32, b *autoscalingv2.HorizontalPodAutoscalerBehavior, now time.Time) limit {
	switch {
	case desired > current:
		up := max(h.scaleUpLimit(key, current, b.ScaleUp, now), current)
		upper := limit{maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"}
		if maxReplicas > up {
			upper = limit{up, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"}
		}
		if desired > upper.replicas {
			return upper
		}
	case desired < current:
		down := min(h.scaleDownLimit(key, current, b.ScaleDown, now), current)
		lower := limit{minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"}
		if minReplicas < down {
			lower = limit{down, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"}
		}
		if desired < lower.replicas {
			return lower
		}
	}
	return limit{desired, "DesiredWithinRange", "the desired count is within the acceptable range"}
}

// withDefaults fills what the API server leaves unset in a behavior (it
// fills nothing when the HPA has none): upstream's default rules, and the
// controller's scale-down window when none is given.
func withDefaults(b *autoscalingv2.HorizontalPodAutoscalerBehavior, downWindow time.Duration) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	out := b.DeepCopy()
	if out.ScaleUp == nil {
		out.ScaleUp = &autoscalingv2.HPAScalingRules{}
	}
	if out.ScaleDown == nil {
		out.ScaleDown = &autoscalingv2.HPAScalingRules{}
	}
	up, down := out.ScaleUp, out.ScaleDown
	if up.StabilizationWindowSeconds == nil {
		up.StabilizationWindowSeconds = ptr.To[int32](0)
	}
	if up.SelectPolicy == nil {
		up.SelectPolicy = ptr.To(autoscalingv2.MaxChangePolicySelect)
	}
	if up.Policies == nil {
		up.Policies = []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		}
	}
	if down.StabilizationWindowSeconds == nil {
		down.StabilizationWindowSeconds = ptr.To(int32(downWindow / time.Second))
	}
	if down.SelectPolicy == nil {
		down.SelectPolicy = ptr.To(autoscalingv2.MaxChangePolicySelect)
	}
	if down.Policies == nil {
		down.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
	}
	return out
}
