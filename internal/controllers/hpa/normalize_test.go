package hpa

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

func TestStabilize(t *testing.T) {
	h := newHistory()
	h.seed("k", 5, now)
	steps := []struct {
		name    string
		at      time.Duration
		desired int32
		want    int32
	}{
		{"a lower recommendation waits for the window", time.Minute, 2, 5},
		{"a higher one applies at once", 2 * time.Minute, 7, 7},
		{"still held by the higher one", 6 * time.Minute, 2, 7},
		{"once the window has passed the lower one applies", 8 * time.Minute, 2, 2},
	}
	for _, s := range steps {
		if got := h.stabilize("k", s.desired, 5*time.Minute, now.Add(s.at)); got != s.want {
			t.Errorf("%s: got %d, want %d", s.name, got, s.want)
		}
	}
}

func TestLimitWithoutBehavior(t *testing.T) {
	cases := []struct {
		name                         string
		current, desired, minR, maxR int32
		want                         int32
		reason                       string
	}{
		{"within range", 3, 5, 1, 10, 5, "DesiredWithinRange"},
		{"at most double per pass", 3, 20, 1, 10, 6, "ScaleUpLimit"},
		{"at least 4 per pass", 1, 20, 1, 10, 4, "ScaleUpLimit"},
		{"max replicas", 3, 20, 1, 5, 5, "TooManyReplicas"},
		{"min replicas", 3, 0, 2, 10, 2, "TooFewReplicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := limitWithoutBehavior(tc.current, tc.desired, tc.minR, tc.maxR)
			if got.replicas != tc.want || got.reason != tc.reason {
				t.Errorf("got %d (%s), want %d (%s)", got.replicas, got.reason, tc.want, tc.reason)
			}
		})
	}
}

func TestLimitWithBehavior(t *testing.T) {
	pods := func(v, period int32) autoscalingv2.HPAScalingPolicy {
		return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: v, PeriodSeconds: period}
	}
	percent := func(v, period int32) autoscalingv2.HPAScalingPolicy {
		return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: v, PeriodSeconds: period}
	}
	cases := []struct {
		name             string
		behavior         autoscalingv2.HorizontalPodAutoscalerBehavior
		upEvents         []scaleEvent // changes relative to now
		current, desired int32
		want             int32
		reason           string
	}{
		{name: "default scale-up: 4 pods or double per 15 s, whichever is more", current: 2, desired: 20, want: 6, reason: "ScaleUpLimit"},
		{name: "default scale-up from 4", current: 4, desired: 50, want: 8, reason: "ScaleUpLimit"},
		{name: "no more until the period has passed", current: 6, desired: 20, want: 6, reason: "ScaleUpLimit",
			upEvents: []scaleEvent{{change: 4, at: now.Add(-10 * time.Second)}}},
		{name: "the period has passed", current: 4, desired: 20, want: 8, reason: "ScaleUpLimit",
			upEvents: []scaleEvent{{change: 4, at: now.Add(-20 * time.Second)}}},
		{name: "max replicas", current: 6, desired: 20, want: 10, reason: "TooManyReplicas",
			behavior: autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{pods(100, 15)}}}},
		{name: "scale-down by at most half a minute", current: 10, desired: 1, want: 5, reason: "ScaleDownLimit",
			behavior: autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{percent(50, 60)}}}},
		{name: "Min picks the smaller change", current: 10, desired: 1, want: 8, reason: "ScaleDownLimit",
			behavior: autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect), Policies: []autoscalingv2.HPAScalingPolicy{percent(50, 60), pods(2, 60)}}}},
		{name: "Disabled scale-down", current: 10, desired: 1, want: 10, reason: "ScaleDownLimit",
			behavior: autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.DisabledPolicySelect)}}},
		{name: "min replicas", current: 3, desired: 0, want: 1, reason: "TooFewReplicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory()
			h.upEvents["k"] = tc.upEvents
			b := withDefaults(&tc.behavior, 5*time.Minute)
			got := h.limitWithBehavior("k", tc.current, tc.desired, 1, 10, b, now)
			if got.replicas != tc.want || got.reason != tc.reason {
				t.Errorf("got %d (%s), want %d (%s)", got.replicas, got.reason, tc.want, tc.reason)
			}
		})
	}
}

func TestStabilizeWithBehavior(t *testing.T) {
	b := withDefaults(&autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](60)},
	}, 5*time.Minute)
	if *b.ScaleDown.StabilizationWindowSeconds != 300 {
		t.Fatalf("scale-down window %d, want the controller's 300", *b.ScaleDown.StabilizationWindowSeconds)
	}
	h := newHistory()
	h.seed("k", 3, now)
	got, reason, _ := h.stabilizeWithBehavior("k", 3, 10, b, now.Add(30*time.Second))
	if got != 3 || reason != "ScaleUpStabilized" {
		t.Errorf("within the scale-up window: %d (%s), want 3 (ScaleUpStabilized)", got, reason)
	}
	got, _, _ = h.stabilizeWithBehavior("k", 3, 10, b, now.Add(90*time.Second))
	if got != 10 {
		t.Errorf("after the scale-up window: %d, want 10", got)
	}
	got, reason, _ = h.stabilizeWithBehavior("k", 10, 2, b, now.Add(100*time.Second))
	if got != 10 || reason != "ScaleDownStabilized" {
		t.Errorf("within the scale-down window: %d (%s), want 10 (ScaleDownStabilized)", got, reason)
	}
}
