package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
)

// The informer event handlers keep the cache up to date and queue the
// pods to schedule; events that may help parked pods bring them back.

// Filters whose verdicts change when pods on nodes come and go.
const (
	pluginFit      = "NodeResourcesFit"
	pluginPorts    = "NodePorts"
	pluginInterPod = "InterPodAffinity"
	pluginSpread   = "PodTopologySpread"
)

func (s *Scheduler) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		if terminal(pod) {
			return
		}
		s.cache.setPod(pod)
		s.queue.move(pluginInterPod, pluginSpread)
	case s.responsible(pod) && pod.DeletionTimestamp == nil && !terminal(pod):
		s.queue.add(podKey(pod))
	}
}

func (s *Scheduler) updatePod(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		if terminal(pod) {
			s.cache.removePod(pod.UID)
			s.queue.move(pluginFit, pluginPorts, pluginInterPod, pluginSpread)
		} else {
			s.cache.setPod(pod)
			if old.Spec.NodeName == "" || !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
				s.queue.move(pluginInterPod, pluginSpread)
			}
		}
		if old.Spec.NodeName == "" {
			s.queue.forget(podKey(pod))
		}
	case s.responsible(pod) && pod.DeletionTimestamp == nil && !terminal(pod):
		// Our own status writes change nothing a filter reads.
		if old.ResourceVersion == pod.ResourceVersion || equality.Semantic.DeepEqual(old.Spec, pod.Spec) &&
			equality.Semantic.DeepEqual(old.Labels, pod.Labels) && equality.Semantic.DeepEqual(old.Annotations, pod.Annotations) {
			return
		}
		s.queue.add(podKey(pod))
	}
}

func (s *Scheduler) deletePod(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.cache.removePod(pod.UID)
	s.queue.forget(podKey(pod))
	if pod.Spec.NodeName != "" {
		s.queue.move(pluginFit, pluginPorts, pluginInterPod, pluginSpread)
	}
}

func (s *Scheduler) addNode(obj any) {
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.setNode(node)
		s.queue.move()
	}
}

func (s *Scheduler) updateNode(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.setNode(node)
	// Heartbeats and conditions change nothing a filter reads.
	if !equality.Semantic.DeepEqual(old.Spec, node.Spec) || !equality.Semantic.DeepEqual(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		s.queue.move()
	}
}

func (s *Scheduler) deleteNode(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.removeNode(node.Name)
	}
}

func (s *Scheduler) setNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		l := ns.Labels
		if l == nil {
			l = map[string]string{}
		}
		s.cache.setNamespace(ns.Name, l)
		s.queue.move(pluginInterPod)
	}
}

func (s *Scheduler) deleteNamespace(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		s.cache.setNamespace(ns.Name, nil)
	}
}
