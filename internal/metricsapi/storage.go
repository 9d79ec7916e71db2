package metricsapi

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// freshContainerMin: a container that started at least this long ago but
// less than one resolution ago gets a rate from its start (CPU zero then)
// to its first point, as metrics-server does; closer to its start the
// rate would be too noisy.
const freshContainerMin = 10 * time.Second

// storage keeps the last two points of every node and container: the
// usage served is the CPU rate between them and the last memory working
// set. Points only move forward in time; a container that restarted
// (its start time is after the last point) starts over.
type storage struct {
	resolution time.Duration

	mu        sync.RWMutex
	nodesLast map[string]point
	nodesPrev map[string]point
	podsLast  map[podKey]map[string]point
	podsPrev  map[podKey]map[string]point
}

func newStorage(resolution time.Duration) *storage {
	return &storage{resolution: resolution,
		nodesLast: map[string]point{}, nodesPrev: map[string]point{},
		podsLast: map[podKey]map[string]point{}, podsPrev: map[podKey]map[string]point{}}
}

// store replaces what is kept with the points of a complete scrape: a
// node or pod absent from it has no metrics any more.
func (s *storage) store(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodesPrev := make(map[string]point, len(b.nodes))
	for name, p := range b.nodes {
		if last, ok := s.nodesLast[name]; ok {
			if p.timestamp.After(last.timestamp) {
				nodesPrev[name] = last
			} else if prev, ok := s.nodesPrev[name]; ok && prev.timestamp.Before(p.timestamp) {
				nodesPrev[name] = prev
			}
		}
	}
	podsPrev := make(map[podKey]map[string]point, len(b.pods))
	for key, containers := range b.pods {
		prevs := map[string]point{}
		for name, p := range containers {
			age := p.timestamp.Sub(p.start)
			if !p.start.IsZero() && p.start.Before(p.timestamp) && age < s.resolution && age >= freshContainerMin {
				fresh := p
				fresh.timestamp, fresh.cpu = p.start, 0
				prevs[name] = fresh
				continue
			}
			last, ok := s.podsLast[key][name]
			if !ok || !p.start.Before(last.timestamp) {
				continue // new, or restarted since
			}
			if p.timestamp.After(last.timestamp) {
				prevs[name] = last
			} else if prev, ok := s.podsPrev[key][name]; ok && prev.timestamp.Before(p.timestamp) {
				prevs[name] = prev
			}
		}
		if len(prevs) > 0 {
			podsPrev[key] = prevs
		}
	}
	s.nodesLast, s.nodesPrev = b.nodes, nodesPrev
	s.podsLast, s.podsPrev = b.pods, podsPrev
}

// node returns a node's usage; ok is false until it has two points.
func (s *storage) node(name string) (usage corev1.ResourceList, ts time.Time, window time.Duration, ok bool) {
	s.mu.RLock()
	last, okLast := s.nodesLast[name]
	prev, okPrev := s.nodesPrev[name]
	s.mu.RUnlock()
	if !okLast || !okPrev {
		return nil, time.Time{}, 0, false
	}
	usage, window, err := resourceUsage(last, prev)
	if err != nil {
		return nil, time.Time{}, 0, false
	}
	return usage, last.timestamp, window, true
}

// pod returns the usage of a pod's containers, sorted by name, with the
// timestamp and window of the oldest; ok is false unless every container
// has two points.
func (s *storage) pod(key podKey) (containers []metricsv1beta1.ContainerMetrics, ts time.Time, window time.Duration, ok bool) {
	s.mu.RLock()
	last := s.podsLast[key]
	prev := s.podsPrev[key]
	s.mu.RUnlock()
	if len(last) == 0 {
		return nil, time.Time{}, 0, false
	}
	for name, l := range last {
		p, found := prev[name]
		if !found {
			return nil, time.Time{}, 0, false
		}
		usage, w, err := resourceUsage(l, p)
		if err != nil {
			continue
		}
		containers = append(containers, metricsv1beta1.ContainerMetrics{Name: name, Usage: usage})
		if ts.IsZero() || l.timestamp.Before(ts) {
			ts, window = l.timestamp, w
		}
	}
	slices.SortFunc(containers, func(a, b metricsv1beta1.ContainerMetrics) int { return cmp.Compare(a.Name, b.Name) })
	return containers, ts, window, true
}

// resourceUsage is the CPU rate between two points (nanocores) and the
// last memory working set.
func resourceUsage(last, prev point) (corev1.ResourceList, time.Duration, error) {
	if last.start.Before(prev.start) {
		return nil, 0, errors.New("start time went back")
	}
	if last.cpu < prev.cpu {
		return nil, 0, errors.New("cumulative cpu usage went back")
	}
	window := last.timestamp.Sub(prev.timestamp)
	if window <= 0 {
		return nil, 0, errors.New("no time between the points")
	}
	rate := float64(last.cpu-prev.cpu) / window.Seconds()
	return corev1.ResourceList{
		corev1.ResourceCPU:    quantity(rate, resource.DecimalSI, -9),
		corev1.ResourceMemory: quantity(float64(last.memory), resource.BinarySI, 0),
	}, window, nil
}

// quantity makes a Quantity of v×10^scale, clamped to what fits.
func quantity(v float64, format resource.Format, scale resource.Scale) resource.Quantity {
	n := int64(math.MaxInt64)
	if v < math.MaxInt64 {
		n = int64(v)
	}
	q := *resource.NewScaledQuantity(n, scale)
	q.Format = format
	return q
}
