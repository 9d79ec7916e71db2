// Package nodelifecycle watches node heartbeats the way Kubernetes' node
// lifecycle controller (with its taint eviction part) does:
//
//   - a node whose Lease in kube-node-lease (or Ready heartbeat) has not
//     been renewed within the grace period (40 s; 60 s for a node that never
//     posted a Ready condition) gets its Ready, MemoryPressure, DiskPressure
//     and PIDPressure conditions set to Unknown, through the status
//     subresource;
//   - node conditions become taints: Ready Unknown puts on
//     node.kubernetes.io/unreachable with NoSchedule and NoExecute, Ready
//     False node.kubernetes.io/not-ready, pressure conditions their
//     NoSchedule taints, spec.unschedulable (kubectl cordon)
//     node.kubernetes.io/unschedulable:NoSchedule; taints whose cause is
//     gone come off;
//   - pods on a node whose Ready condition is not True are marked not
//     ready (their Ready condition False), so Services drop them;
//   - pods on a node with NoExecute taints are deleted once their
//     toleration runs out: at once for a taint they do not tolerate, after
//     tolerationSeconds for one they do, and after the default 300 s for
//     not-ready and unreachable when they have no toleration for those
//     (upstream's admission adds such tolerations; Skiff's does not);
//   - a node whose lease is renewed again is reachable: the Ready=Unknown
//     the controller wrote becomes True and the taints come off.
//
// Zone disruption modes and eviction rate limits of upstream are not
// implemented. Only the daemon should import this package.
package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Upstream's defaults.
const (
	DefaultGracePeriod        = 40 * time.Second
	DefaultStartupGracePeriod = 60 * time.Second
	DefaultToleration         = 300 * time.Second
	DefaultMonitorPeriod      = 5 * time.Second
)

// Options tunes the controller. The zero value behaves as upstream.
type Options struct {
	// Clock reads the time heartbeats and tolerations are measured with
	// (default: the real clock).
	Clock clock.PassiveClock
	// GracePeriod is how long a node may go without renewing its lease
	// before it is unreachable (node-monitor-grace-period).
	GracePeriod time.Duration
	// StartupGracePeriod replaces GracePeriod for a node that never posted
	// a Ready condition, counted from its creation.
	StartupGracePeriod time.Duration
	// DefaultToleration is how long a pod without a toleration for the
	// not-ready or unreachable NoExecute taint stays on such a node
	// (default-not-ready/unreachable-toleration-seconds).
	DefaultToleration time.Duration
	// MonitorPeriod is how often every node is looked at.
	MonitorPeriod time.Duration
}

// Controller is the node lifecycle controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.PassiveClock
	opts     Options

	nodes      corelisters.NodeLister
	leases     coordinationlisters.LeaseLister
	pods       corelisters.PodLister
	podIndexer cache.Indexer
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	health map[string]*health
	// seen holds when a NoExecute taint without timeAdded was first seen.
	seen map[seenKey]time.Time
}

type seenKey struct{ node, key string }

// podsByNode indexes pods by spec.nodeName.
const podsByNode = "nodelifecycle-node"

// New returns a controller that watches Nodes, node Leases and Pods
// through factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.StartupGracePeriod <= 0 {
		opts.StartupGracePeriod = DefaultStartupGracePeriod
	}
	if opts.DefaultToleration <= 0 {
		opts.DefaultToleration = DefaultToleration
	}
	if opts.MonitorPeriod <= 0 {
		opts.MonitorPeriod = DefaultMonitorPeriod
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	nodeInf := factory.Core().V1().Nodes()
	leaseInf := factory.Coordination().V1().Leases()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "node-lifecycle-controller"),
		clock:    opts.Clock,
		opts:     opts,
		nodes:    nodeInf.Lister(),
		leases:   leaseInf.Lister(),
		pods:     podInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "node_lifecycle"}),
		health: map[string]*health{},
		seen:   map[seenKey]time.Time{},
	}
	// Errors only come from adding an indexer to a started informer,
	// which the caller has not done yet; podsOn falls back to a scan.
	_ = podInf.Informer().AddIndexers(cache.Indexers{podsByNode: indexByNode})
	c.podIndexer = podInf.Informer().GetIndexer()
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueNode,
		UpdateFunc: func(_, cur any) { c.enqueueNode(cur) },
		DeleteFunc: c.enqueueNode,
	})
	_, _ = leaseInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueLease,
		UpdateFunc: func(_, cur any) { c.enqueueLease(cur) },
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePod,
		UpdateFunc: func(_, cur any) { c.enqueuePod(cur) },
	})
	c.synced = []cache.InformerSynced{nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c
}

func indexByNode(obj any) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}, nil
	}
	return nil, nil
}

func (c *Controller) enqueueNode(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		c.queue.Add(n.Name)
	}
}

func (c *Controller) enqueueLease(obj any) {
	if l, ok := obj.(metav1.Object); ok && l.GetNamespace() == nodeLeaseNamespace {
		c.queue.Add(l.GetName())
	}
}

// enqueuePod looks at a pod's node when that node has NoExecute taints: a
// pod bound there may have to go.
func (c *Controller) enqueuePod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
		return
	}
	if n, err := c.nodes.Get(p.Spec.NodeName); err == nil && len(noExecute(n.Spec.Taints)) > 0 {
		c.queue.Add(n.Name)
	}
}

// Run waits for the caches, then looks at every node each monitor period
// and on every change, with the given number of workers, until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("node lifecycle controller: caches did not sync")
	}
	c.log.Info("started", "workers", workers, "gracePeriod", c.opts.GracePeriod, "defaultToleration", c.opts.DefaultToleration)
	var wg sync.WaitGroup
	wg.Go(func() { c.monitor(ctx) })
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// monitor queues every node each monitor period: heartbeats are missed
// without any event.
func (c *Controller) monitor(ctx context.Context) {
	t := time.NewTicker(c.opts.MonitorPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			nodes, _ := c.nodes.List(labels.Everything())
			for _, n := range nodes {
				c.queue.Add(n.Name)
			}
		}
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	if err := c.sync(ctx, name); err != nil {
		if ctx.Err() == nil && !apierrors.IsConflict(err) {
			c.log.Warn("will retry", "node", name, "err", err)
		}
		c.queue.AddRateLimited(name)
		return true
	}
	c.queue.Forget(name)
	return true
}

// sync brings one node's conditions and taints in line with its
// heartbeats and evicts the pods whose tolerations ran out.
func (c *Controller) sync(ctx context.Context, name string) error {
	cached, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetNode(name)
		return nil
	}
	if err != nil {
		return err
	}
	lease, err := c.leases.Leases(nodeLeaseNamespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	now := c.clock.Now()
	c.mu.Lock()
	h, period := observe(c.health[name], cached, lease, now, c.opts.GracePeriod, c.opts.StartupGracePeriod)
	c.health[name] = h
	stale := h.stale(now, period)
	probe := h.probe
	c.mu.Unlock()

	node := cached.DeepCopy()
	stamp := metav1.NewTime(now)
	wasReady := isReady(node)
	changed := false
	if stale {
		changed = markUnknown(node, stamp)
		// The Ready condition written here is no heartbeat.
		c.mu.Lock()
		h.heartbeat = condition(&node.Status, corev1.NodeReady).LastHeartbeatTime
		c.mu.Unlock()
	} else {
		c.mu.Lock()
		changed = markReachable(node, h, stamp)
		c.mu.Unlock()
	}
	if changed {
		if node, err = c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of node %s: %w", name, err)
		}
		if wasReady && !isReady(node) {
			c.log.Info("node not ready", "node", name, "lastHeartbeat", probe)
			c.recorder.Eventf(node, corev1.EventTypeNormal, eventNodeNotReady, "Node %s status is now: %s", name, eventNodeNotReady)
		}
	}
	if taints, changed := reconcileTaints(node, stamp); changed {
		node = node.DeepCopy()
		node.Spec.Taints = taints
		if node, err = c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update taints of node %s: %w", name, err)
		}
	}
	notReadyErr := c.markPodsNotReady(ctx, node)
	next, err := c.evict(ctx, node, now)
	err = errors.Join(notReadyErr, err)
	if !stale {
		if untilStale := probe.Add(period).Sub(now); next <= 0 || untilStale < next {
			next = untilStale
		}
	}
	if next > 0 {
		c.queue.AddAfter(name, next+10*time.Millisecond)
	}
	return err
}

func isReady(node *corev1.Node) bool {
	c := condition(&node.Status, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func (c *Controller) forgetNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.health, name)
	for k := range c.seen {
		if k.node == name {
			delete(c.seen, k)
		}
	}
}

func noExecute(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

func hasKey(taints []corev1.Taint, key string) bool {
	for _, t := range taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
