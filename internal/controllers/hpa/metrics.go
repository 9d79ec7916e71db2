package hpa

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	metricsclientset "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"
)

// PodMetric is one pod's usage of one resource over a window ending at
// Timestamp, summed over its containers (or of one container).
type PodMetric struct {
	Timestamp time.Time
	Window    time.Duration
	// Value in milli-units: millicores for cpu, millibytes for memory.
	Value int64
}

// PodMetricsInfo is usage by pod name.
type PodMetricsInfo map[string]PodMetric

// MetricsClient reads pod resource usage, as the metrics.k8s.io
// PodMetrics API (metrics-server) gives it.
type MetricsClient interface {
	// PodUsage returns the usage of resource by the pods in namespace that
	// match selector: by the named container of each pod, or summed over
	// all of them when container is "". Pods without a sample (or whose
	// containers lack the resource) are absent. The time is that of the
	// samples.
	PodUsage(ctx context.Context, resource corev1.ResourceName, namespace string, selector labels.Selector, container string) (PodMetricsInfo, time.Time, error)
}

// NewMetricsClient returns a MetricsClient over the metrics.k8s.io API.
func NewMetricsClient(c metricsclientset.Interface) MetricsClient { return &apiMetrics{c: c} }

type apiMetrics struct{ c metricsclientset.Interface }

func (m *apiMetrics) PodUsage(ctx context.Context, res corev1.ResourceName, ns string, selector labels.Selector, container string) (PodMetricsInfo, time.Time, error) {
	list, err := m.c.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("unable to fetch metrics from resource metrics API: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, time.Time{}, errors.New("no metrics returned from resource metrics API")
	}
	out := PodMetricsInfo{}
	for _, pm := range list.Items {
		usage := make([]corev1.ResourceList, 0, len(pm.Containers))
		for _, c := range pm.Containers {
			if container == "" || c.Name == container {
				usage = append(usage, c.Usage)
			}
		}
		if v, ok := sumUsage(usage, res); ok {
			out[pm.Name] = PodMetric{Timestamp: pm.Timestamp.Time, Window: pm.Window.Duration, Value: v}
		}
	}
	return out, list.Items[0].Timestamp.Time, nil
}

// sumUsage adds up res over the lists; ok is false when one lacks it or
// there are none.
func sumUsage(lists []corev1.ResourceList, res corev1.ResourceName) (milli int64, ok bool) {
	if len(lists) == 0 {
		return 0, false
	}
	for _, l := range lists {
		q, found := l[res]
		if !found {
			return 0, false
		}
		milli += q.MilliValue()
	}
	return milli, true
}

// FakeMetrics is a MetricsClient for tests: for every pod that Client
// lists in the namespace by the selector, Usage says what it uses (per
// container name; nil means the pod has no sample yet). Samples are
// stamped with Clock's time (real time when nil) and a 30 s window.
type FakeMetrics struct {
	Client kubernetes.Interface
	Usage  func(pod *corev1.Pod) map[string]corev1.ResourceList
	Clock  clock.PassiveClock
}

// PodUsage implements MetricsClient.
func (f *FakeMetrics) PodUsage(ctx context.Context, res corev1.ResourceName, ns string, selector labels.Selector, container string) (PodMetricsInfo, time.Time, error) {
	pods, err := f.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("unable to fetch metrics from resource metrics API: %w", err)
	}
	var now time.Time
	if f.Clock != nil {
		now = f.Clock.Now()
	} else {
		now = time.Now()
	}
	out := PodMetricsInfo{}
	for i := range pods.Items {
		byContainer := f.Usage(&pods.Items[i])
		if byContainer == nil {
			continue
		}
		var usage []corev1.ResourceList
		for name, l := range byContainer {
			if container == "" || name == container {
				usage = append(usage, l)
			}
		}
		if v, ok := sumUsage(usage, res); ok {
			out[pods.Items[i].Name] = PodMetric{Timestamp: now, Window: 30 * time.Second, Value: v}
		}
	}
	if len(out) == 0 {
		return nil, time.Time{}, errors.New("no metrics returned from resource metrics API")
	}
	return out, now, nil
}

var _ MetricsClient = (*FakeMetrics)(nil)
