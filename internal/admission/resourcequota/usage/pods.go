package usage

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	resourcehelper "k8s.io/component-helpers/resource"
)

// podNames are the fixed names pods charge.
var podNames = []corev1.ResourceName{
	"count/pods",
	corev1.ResourcePods,
	corev1.ResourceCPU,
	corev1.ResourceMemory,
	corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU,
	corev1.ResourceRequestsMemory,
	corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU,
	corev1.ResourceLimitsMemory,
	corev1.ResourceLimitsEphemeralStorage,
}

// mustSpecify are the names a container must state a value for when a
// quota limits them (upstream's backward-compatible rule; no others are
// ever added to it).
var mustSpecify = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
}

type podEvaluator struct{}

func (podEvaluator) GroupResource() schema.GroupResource {
	return schema.GroupResource{Resource: "pods"}
}
func (podEvaluator) ChargesUpdates() bool { return true }

func (podEvaluator) MatchingResources(names []corev1.ResourceName) []corev1.ResourceName {
	out := Intersect(names, podNames)
	for _, n := range names {
		s := string(n)
		switch {
		case strings.HasPrefix(s, corev1.ResourceHugePagesPrefix), strings.HasPrefix(s, corev1.ResourceRequestsHugePagesPrefix):
			out = append(out, n)
		case strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix) && !isNative(corev1.ResourceName(strings.TrimPrefix(s, corev1.DefaultResourceRequestsPrefix))):
			out = append(out, n) // requests.<extended resource>
		}
	}
	return out
}

// isNative: unprefixed names and *kubernetes.io/ ones.
func isNative(n corev1.ResourceName) bool {
	return !strings.Contains(string(n), "/") || strings.Contains(string(n), corev1.ResourceDefaultNamespacePrefix)
}

func (podEvaluator) Usage(obj runtime.Object, now time.Time) (corev1.ResourceList, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return nil, typeError("*v1.Pod", obj)
	}
	// Every stored pod counts in count/pods; "pods" and compute only while
	// the pod is not terminal.
	out := corev1.ResourceList{"count/pods": one()}
	if !Charged(pod, now) {
		return out, nil
	}
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	return Add(out, computeUsage(requests, limits)), nil
}

// Charged reports whether a pod counts against compute quota: it is not
// Succeeded or Failed, and is not past the end of its deletion grace
// period (a pod stuck terminating on a lost node stops counting).
func Charged(pod *corev1.Pod, now time.Time) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil {
		end := pod.DeletionTimestamp.Add(time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second)
		if now.After(end) {
			return false
		}
	}
	return true
}

// computeUsage maps requests and limits to quota names.
func computeUsage(requests, limits corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourcePods: one()}
	for _, r := range []struct{ name, plain, req, lim corev1.ResourceName }{
		{corev1.ResourceCPU, corev1.ResourceCPU, corev1.ResourceRequestsCPU, corev1.ResourceLimitsCPU},
		{corev1.ResourceMemory, corev1.ResourceMemory, corev1.ResourceRequestsMemory, corev1.ResourceLimitsMemory},
		{corev1.ResourceEphemeralStorage, corev1.ResourceEphemeralStorage, corev1.ResourceRequestsEphemeralStorage, corev1.ResourceLimitsEphemeralStorage},
	} {
		if q, ok := requests[r.name]; ok {
			out[r.plain] = q.DeepCopy()
			out[r.req] = q.DeepCopy()
		}
		if q, ok := limits[r.name]; ok {
			out[r.lim] = q.DeepCopy()
		}
	}
	for n, q := range requests {
		switch {
		case strings.HasPrefix(string(n), corev1.ResourceHugePagesPrefix):
			out[n] = q.DeepCopy()
			out[corev1.DefaultResourceRequestsPrefix+n] = q.DeepCopy()
		case !isNative(n):
			out[corev1.DefaultResourceRequestsPrefix+n] = q.DeepCopy()
		}
	}
	return out
}

// Constraints requires every container to state the cpu and memory
// values a quota limits.
func (podEvaluator) Constraints(required []corev1.ResourceName, obj runtime.Object) error {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return typeError("*v1.Pod", obj)
	}
	required = Intersect(required, mustSpecify)
	if len(required) == 0 {
		return nil
	}
	missing := map[corev1.ResourceName][]string{}
	check := func(c *corev1.Container) {
		have := computeUsage(c.Resources.Requests, c.Resources.Limits)
		for _, n := range required {
			if _, ok := have[n]; !ok && !slices.Contains(missing[n], c.Name) {
				missing[n] = append(missing[n], c.Name)
			}
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		check(&pod.Spec.InitContainers[i])
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]corev1.ResourceName, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	slices.Sort(names)
	msgs := make([]string, 0, len(names))
	for _, n := range names {
		containers := missing[n]
		slices.Sort(containers)
		msgs = append(msgs, fmt.Sprintf("%s for: %s", n, strings.Join(containers, ",")))
	}
	return fmt.Errorf("must specify %s", strings.Join(msgs, "; "))
}

func (podEvaluator) MatchesScope(sel corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return false, typeError("*v1.Pod", obj)
	}
	switch sel.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return terminating(pod), nil
	case corev1.ResourceQuotaScopeNotTerminating:
		return !terminating(pod), nil
	case corev1.ResourceQuotaScopeBestEffort:
		return BestEffort(pod), nil
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !BestEffort(pod), nil
	case corev1.ResourceQuotaScopePriorityClass:
		if sel.Operator == corev1.ScopeSelectorOpExists {
			return pod.Spec.PriorityClassName != "", nil
		}
		return priorityClassMatches(pod, sel)
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(pod), nil
	}
	return false, nil
}

// terminating: the pod has an active deadline.
func terminating(pod *corev1.Pod) bool {
	return pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
}

// BestEffort reports whether the pod is of the BestEffort QoS class: no
// container (nor the pod) requests or limits cpu or memory.
func BestEffort(pod *corev1.Pod) bool {
	nonZero := func(l corev1.ResourceList) bool {
		for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := l[n]; ok && !q.IsZero() {
				return true
			}
		}
		return false
	}
	if r := pod.Spec.Resources; r != nil && (nonZero(r.Requests) || nonZero(r.Limits)) {
		return false
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if nonZero(c.Resources.Requests) || nonZero(c.Resources.Limits) {
				return false
			}
		}
	}
	return true
}

// priorityClassMatches tests the pod's priority class name against an
// In/NotIn/DoesNotExist selector, as a label named PriorityClass.
func priorityClassMatches(pod *corev1.Pod, sel corev1.ScopedResourceSelectorRequirement) (bool, error) {
	var op selection.Operator
	switch sel.Operator {
	case corev1.ScopeSelectorOpIn:
		op = selection.In
	case corev1.ScopeSelectorOpNotIn:
		op = selection.NotIn
	case corev1.ScopeSelectorOpExists:
		op = selection.Exists
	case corev1.ScopeSelectorOpDoesNotExist:
		op = selection.DoesNotExist
	default:
		return false, fmt.Errorf("%q is not a valid scope selector operator", sel.Operator)
	}
	req, err := labels.NewRequirement(string(sel.ScopeName), op, sel.Values)
	if err != nil {
		return false, fmt.Errorf("failed to parse and convert selector: %w", err)
	}
	set := labels.Set{}
	if pod.Spec.PriorityClassName != "" {
		set[string(corev1.ResourceQuotaScopePriorityClass)] = pod.Spec.PriorityClassName
	}
	return labels.NewSelector().Add(*req).Matches(set), nil
}

// crossNamespaceAffinity: some pod (anti-)affinity term names namespaces
// or a namespace selector.
func crossNamespaceAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil {
		return false
	}
	cross := func(t *corev1.PodAffinityTerm) bool { return len(t.Namespaces) > 0 || t.NamespaceSelector != nil }
	check := func(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm) bool {
		for i := range req {
			if cross(&req[i]) {
				return true
			}
		}
		for i := range pref {
			if cross(&pref[i].PodAffinityTerm) {
				return true
			}
		}
		return false
	}
	if p := a.PodAffinity; p != nil && check(p.RequiredDuringSchedulingIgnoredDuringExecution, p.PreferredDuringSchedulingIgnoredDuringExecution) {
		return true
	}
	if p := a.PodAntiAffinity; p != nil && check(p.RequiredDuringSchedulingIgnoredDuringExecution, p.PreferredDuringSchedulingIgnoredDuringExecution) {
		return true
	}
	return false
}
