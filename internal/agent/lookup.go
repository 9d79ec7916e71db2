package agent

import corev1 "k8s.io/api/core/v1"

// GetPodByName returns a pod bound to this node, from the agent's cache
// (the agent server's view of the node's pods). It is false before Ready
// and for pods of other nodes. The pod must not be modified.
func (a *Agent) GetPodByName(namespace, name string) (*corev1.Pod, bool) {
	select {
	case <-a.ready: // podLister is set before ready closes
	default:
		return nil, false
	}
	pod, err := a.podLister.Pods(namespace).Get(name)
	if err != nil {
		return nil, false
	}
	return pod, true
}
