package hpa

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// tolerances are how far below and above 1 the usage ratio may be before
// the replica count changes.
type tolerances struct {
	down, up float64
}

func (t tolerances) within(ratio float64) bool {
	return 1.0-t.down <= ratio && ratio <= 1.0+t.up
}

// calculator is upstream's replica calculator for resource metrics, as a
// pure function of the target's pods and their samples.
type calculator struct {
	tolerances tolerances
	// cpuInitialization is how long after its start a pod's CPU samples
	// are distrusted unless it has been Ready a full sample window.
	cpuInitialization time.Duration
	// readinessDelay is how long after its start a pod that is not Ready
	// counts as never having been Ready.
	readinessDelay time.Duration
	now            time.Time
}

// podSets sorts the target's pods as upstream's groupPods: ready pods with
// samples count; unready pods (Pending, or for CPU not Ready yet or with a
// sample from before they were) are left out, or count as idle when
// scaling up; pods without samples count as idle when scaling up and as
// using their request when scaling down; deleted and failed pods are
// ignored.
type podSets struct {
	ready                     int
	unready, missing, ignored map[string]bool
}

func (c calculator) group(pods []*corev1.Pod, metrics PodMetricsInfo, res corev1.ResourceName) podSets {
	g := podSets{unready: map[string]bool{}, missing: map[string]bool{}, ignored: map[string]bool{}}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			g.ignored[pod.Name] = true
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			g.unready[pod.Name] = true
			continue
		}
		sample, found := metrics[pod.Name]
		if !found {
			g.missing[pod.Name] = true
			continue
		}
		if res == corev1.ResourceCPU && c.cpuUnready(pod, sample) {
			g.unready[pod.Name] = true
			continue
		}
		g.ready++
	}
	return g
}

// cpuUnready says whether a pod's CPU sample should not be trusted: the
// pod has no Ready condition or start time; or it is still initializing
// and is not Ready or was not Ready for a whole sample window; or, past
// initialization, it is not Ready and never was.
func (c calculator) cpuUnready(pod *corev1.Pod, sample PodMetric) bool {
	var ready *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			ready = &pod.Status.Conditions[i]
		}
	}
	if ready == nil || pod.Status.StartTime == nil {
		return true
	}
	start := pod.Status.StartTime.Time
	if start.Add(c.cpuInitialization).After(c.now) {
		return ready.Status == corev1.ConditionFalse || sample.Timestamp.Before(ready.LastTransitionTime.Add(sample.Window))
	}
	return ready.Status == corev1.ConditionFalse && start.Add(c.readinessDelay).After(ready.LastTransitionTime.Time)
}

// podRequests sums each pod's request of res over its containers (or the
// named one) and its sidecar (restartable init) containers. A container
// without a request is an error: utilization cannot be computed.
func podRequests(pods []*corev1.Pod, res corev1.ResourceName, container string) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		var sum int64
		var found bool
		add := func(c *corev1.Container) error {
			if container != "" && c.Name != container {
				return nil
			}
			q, ok := c.Resources.Requests[res]
			if !ok {
				return fmt.Errorf("missing request for %s in container %s of Pod %s", res, c.Name, pod.Name)
			}
			sum += q.MilliValue()
			found = true
			return nil
		}
		for i := range pod.Spec.Containers {
			if err := add(&pod.Spec.Containers[i]); err != nil {
				return nil, err
			}
		}
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				if err := add(c); err != nil {
					return nil, err
				}
			}
		}
		if container != "" && !found {
			return nil, fmt.Errorf("container %s not present in pod %s", container, pod.Name)
		}
		out[pod.Name] = sum
	}
	return out, nil
}

// utilizationRatio is total usage over total request of the pods that have
// both, against target (percent): the ratio, the utilization in percent
// and the average raw usage.
func utilizationRatio(metrics PodMetricsInfo, requests map[string]int64, target int32) (ratio float64, utilization int32, rawAverage int64, err error) {
	var usage, request int64
	n := 0
	for name, m := range metrics {
		r, ok := requests[name]
		if !ok {
			continue
		}
		usage += m.Value
		request += r
		n++
	}
	if request == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization = int32(usage * 100 / request)
	return float64(utilization) / float64(target), utilization, usage / int64(n), nil
}

// utilizationReplicas is how many replicas bring the pods' average
// utilization of res (percent of request) to target: current when within
// tolerance, else ceil(ratio × pods counted), with unready and missing
// pods counted so as to dampen the change, and never a change opposite to
// what the plain ratio says. It also returns the utilization and average
// raw usage.
func (c calculator) utilizationReplicas(current, target int32, pods []*corev1.Pod, metrics PodMetricsInfo, res corev1.ResourceName, container string) (int32, int32, int64, error) {
	if len(pods) == 0 {
		return 0, 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	metrics = onlyPods(metrics, pods)
	g := c.group(pods, metrics, res)
	drop(metrics, g.ignored)
	drop(metrics, g.unready)
	if len(metrics) == 0 {
		return 0, 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	requests, err := podRequests(pods, res, container)
	if err != nil {
		return 0, 0, 0, err
	}
	ratio, utilization, raw, err := utilizationRatio(metrics, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	scaleUpWithUnready := len(g.unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(g.missing) == 0 {
		if c.tolerances.within(ratio) {
			return current, utilization, raw, nil
		}
		return int32(math.Ceil(ratio * float64(g.ready))), utilization, raw, nil
	}
	if len(g.missing) > 0 {
		switch {
		case ratio < 1.0:
			// Scaling down: pods without samples use their request (or the
			// target, when it is above 100%).
			fallback := int64(max(100, target))
			for name := range g.missing {
				metrics[name] = PodMetric{Value: requests[name] * fallback / 100}
			}
		case ratio > 1.0:
			for name := range g.missing {
				metrics[name] = PodMetric{Value: 0}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range g.unready {
			metrics[name] = PodMetric{Value: 0}
		}
	}
	newRatio, _, _, err := utilizationRatio(metrics, requests, target)
	if err != nil {
		return 0, utilization, raw, err
	}
	return c.dampened(current, ratio, newRatio, len(metrics)), utilization, raw, nil
}

// averageValueReplicas is how many replicas bring the pods' average usage
// of res (milli-units) to target, counting unready and missing pods as
// utilizationReplicas does. It also returns the average usage.
func (c calculator) averageValueReplicas(current int32, target int64, pods []*corev1.Pod, metrics PodMetricsInfo, res corev1.ResourceName) (int32, int64, error) {
	if len(pods) == 0 {
		return 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	metrics = onlyPods(metrics, pods)
	g := c.group(pods, metrics, res)
	drop(metrics, g.ignored)
	drop(metrics, g.unready)
	if len(metrics) == 0 {
		return 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, usage := averageRatio(metrics, target)
	scaleUpWithUnready := len(g.unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(g.missing) == 0 {
		if c.tolerances.within(ratio) {
			return current, usage, nil
		}
		return int32(math.Ceil(ratio * float64(g.ready))), usage, nil
	}
	if len(g.missing) > 0 {
		v := int64(0)
		if ratio < 1.0 {
			v = target
		}
		for name := range g.missing {
			metrics[name] = PodMetric{Value: v}
		}
	}
	if scaleUpWithUnready {
		for name := range g.unready {
			metrics[name] = PodMetric{Value: 0}
		}
	}
	newRatio, _ := averageRatio(metrics, target)
	return c.dampened(current, ratio, newRatio, len(metrics)), usage, nil
}

// dampened is the replica count from the ratio recomputed with unready
// and missing pods filled in: current when that is within tolerance or
// reverses the direction of the plain ratio, or when the count itself
// would move against it.
func (c calculator) dampened(current int32, ratio, newRatio float64, counted int) int32 {
	if c.tolerances.within(newRatio) || ratio < 1.0 && newRatio > 1.0 || ratio > 1.0 && newRatio < 1.0 {
		return current
	}
	replicas := int32(math.Ceil(newRatio * float64(counted)))
	if newRatio < 1.0 && replicas > current || newRatio > 1.0 && replicas < current {
		return current
	}
	return replicas
}

func averageRatio(metrics PodMetricsInfo, target int64) (ratio float64, average int64) {
	var sum int64
	for _, m := range metrics {
		sum += m.Value
	}
	average = sum / int64(len(metrics))
	return float64(average) / float64(target), average
}

// onlyPods keeps the samples of the given pods (a copy, so callers may
// fill in more).
func onlyPods(metrics PodMetricsInfo, pods []*corev1.Pod) PodMetricsInfo {
	out := make(PodMetricsInfo, len(pods))
	for _, pod := range pods {
		if m, ok := metrics[pod.Name]; ok {
			out[pod.Name] = m
		}
	}
	return out
}

func drop(metrics PodMetricsInfo, names map[string]bool) {
	for name := range names {
		delete(metrics, name)
	}
}
