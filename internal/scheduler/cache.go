package scheduler

import (
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// cache holds the nodes and, on each, the pods bound to it or assumed on
// it: a pod is assumed from the moment a cycle chooses its node until the
// informer shows it bound, so the next cycles count it even before the
// binding is visible. Informer handlers and the scheduling cycle are its
// only users; a cycle reads it under the read lock.
type cache struct {
	mu    sync.RWMutex
	nodes map[string]*NodeInfo // Node nil: pods name a node not (or no longer) seen
	// sorted lists the infos with a node, by name: the snapshot order.
	sorted     []*NodeInfo
	pods       map[types.UID]*cachedPod
	namespaces map[string]labels.Set
}

type cachedPod struct {
	info    *PodInfo
	node    string
	assumed bool
}

func newCache() *cache {
	return &cache{nodes: map[string]*NodeInfo{}, pods: map[types.UID]*cachedPod{}, namespaces: map[string]labels.Set{}}
}

// infoFor returns the info of a node, creating an empty one.
func (c *cache) infoFor(name string) *NodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = &NodeInfo{UsedPorts: HostPorts{}}
		c.nodes[name] = n
	}
	return n
}

func byNodeName(a, b *NodeInfo) int { return strings.Compare(a.Node.Name, b.Node.Name) }

// setNode adds or updates a node.
func (c *cache) setNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.infoFor(node.Name)
	isNew := n.Node == nil
	n.SetNode(node)
	if isNew {
		i, _ := slices.BinarySearchFunc(c.sorted, n, byNodeName)
		c.sorted = slices.Insert(c.sorted, i, n)
	}
}

// removeNode forgets a node; its pods stay counted until they go.
func (c *cache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil || n.Node == nil {
		return
	}
	c.sorted = slices.DeleteFunc(c.sorted, func(x *NodeInfo) bool { return x == n })
	n.SetNode(nil)
	if len(n.Pods) == 0 {
		delete(c.nodes, name)
	}
}

// setPod records a pod the informer shows bound to a node; it replaces an
// assumed copy.
func (c *cache) setPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(pod.UID)
	c.addPodLocked(pod, false)
}

func (c *cache) addPodLocked(pod *corev1.Pod, assumed bool) {
	pi := NewPodInfo(pod)
	c.infoFor(pod.Spec.NodeName).AddPod(pi)
	c.pods[pod.UID] = &cachedPod{info: pi, node: pod.Spec.NodeName, assumed: assumed}
}

// removePod forgets a pod (deleted, finished or assumed and failed).
func (c *cache) removePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(uid)
}

func (c *cache) removePodLocked(uid types.UID) {
	cp := c.pods[uid]
	if cp == nil {
		return
	}
	delete(c.pods, uid)
	if n := c.nodes[cp.node]; n != nil {
		n.RemovePod(uid)
		if n.Node == nil && len(n.Pods) == 0 {
			delete(c.nodes, cp.node)
		}
	}
}

// assume counts pod (a copy with spec.nodeName set) on its node before the
// binding is observed.
func (c *cache) assume(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(pod.UID)
	c.addPodLocked(pod, true)
}

// forget drops an assumed pod whose binding failed; a pod the informer has
// meanwhile shown bound stays.
func (c *cache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[uid]; cp != nil && cp.assumed {
		c.removePodLocked(uid)
	}
}

// isAssumed reports whether a pod is assumed and not yet seen bound.
func (c *cache) isAssumed(uid types.UID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cp := c.pods[uid]
	return cp != nil && cp.assumed
}

// setNamespace records a namespace's labels (nil removes it).
func (c *cache) setNamespace(name string, l map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l == nil {
		delete(c.namespaces, name)
		return
	}
	c.namespaces[name] = labels.Set(l)
}

// withSnapshot runs fn on the current state under the read lock; fn must
// not keep the snapshot.
func (c *cache) withSnapshot(fn func(*Snapshot)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(&Snapshot{Nodes: c.sorted, NamespaceLabels: c.namespaces})
}

// counts returns the number of nodes and of pods (assumed ones apart).
func (c *cache) counts() (nodes, pods, assumed int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, cp := range c.pods {
		if cp.assumed {
			assumed++
		}
	}
	return len(c.sorted), len(c.pods) - assumed, assumed
}
