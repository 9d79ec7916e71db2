// Package agent is Skiff's node agent, the kubelet's job: it registers
// the node (a Node object whose status it keeps, and a Lease in
// kube-node-lease it renews), watches the pods bound to the node and
// makes them real through a pod runtime (package podruntime, behind the
// small Runtime interface declared here): sandboxes, image pulls, init
// containers, native sidecars, app containers with their environment,
// volumes, security context and cgroup values, lifecycle hooks, probes,
// restarts with CrashLoopBackOff, graceful deletion, and the pods' status
// and events as upstream's kubelet writes them.
//
// Each pod has a worker goroutine that reconciles it level-triggered: it
// re-reads the pod from the informer's cache and the pod's containers
// from the runtime, acts, and writes the status through the status
// subresource. Informer events, container exits, probe results and
// timers only wake workers (through a workqueue). Nothing the agent keeps
// in memory is needed for correctness: a new Agent on the same runtime
// adopts what runs and restarts nothing that is healthy.
//
// The daemon and the CLI import this package; it imports no other Skiff
// component but the runtime's plain types.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Options configure an Agent. NodeName, Client, Runtime and DataDir are
// required; the rest have kubelet's defaults.
type Options struct {
	// NodeName names the Node object and selects the pods to run.
	NodeName string
	// Client talks to the API server.
	Client kubernetes.Interface
	// Runtime runs the pods' sandboxes and containers.
	Runtime Runtime
	// DataDir holds the agent's per-pod state: volumes
	// (pods/<uid>/volumes/...) and termination-message files.
	DataDir string

	// Recorder records events; nil records them to the API server as
	// component "kubelet".
	Recorder record.EventRecorder
	// Clock tells the time for back-offs and timestamps (default: real).
	Clock clock.WithTicker

	// NodeIP is the node's InternalIP and the pods' hostIP (default: the
	// address of the interface of the default route, else the first
	// global unicast address, else 127.0.0.1).
	NodeIP string
	// PodCIDR is written to the Node's spec.podCIDR when set.
	PodCIDR string
	// NodeLabels are added to the Node's labels.
	NodeLabels map[string]string
	// ServerPort is the agent server's port, published as
	// status.daemonEndpoints.kubeletEndpoint.port (default 10250).
	ServerPort int32
	// MaxPods is the node's pods capacity (default 110).
	MaxPods int
	// ClusterDNS are the nameservers of pods with dnsPolicy ClusterFirst;
	// empty makes them use the node's resolv.conf (as Default does).
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// ResolvConf is the node's resolver configuration that pods' DNS
	// settings start from, as the kubelet's --resolv-conf: the servers,
	// searches and options of dnsPolicy Default pods, the search domains
	// ClusterFirst pods add after the cluster's. Default /etc/resolv.conf,
	// or /run/systemd/resolve/resolv.conf when /etc/resolv.conf names only
	// a loopback stub resolver.
	ResolvConf string

	// LeaseDuration is the node Lease's leaseDurationSeconds (default
	// 40 s); LeaseRenewInterval how often it is renewed (default 10 s).
	LeaseDuration      time.Duration
	LeaseRenewInterval time.Duration
	// NodeStatusUpdateFrequency is how often the node's status is
	// computed (default 10 s); it is written when it changed or
	// NodeStatusReportFrequency passed since the last write (default
	// 5 min).
	NodeStatusUpdateFrequency time.Duration
	NodeStatusReportFrequency time.Duration
	// SyncFrequency is how often every pod is reconciled even without
	// events, which refreshes configMap, secret and downwardAPI volumes
	// (default 30 s).
	SyncFrequency time.Duration

	// BackOffInitial, BackOffMax and BackOffReset shape CrashLoopBackOff
	// and ImagePullBackOff: the first delay (default 10 s), doubling to
	// at most BackOffMax (default 5 min), and back to BackOffInitial
	// after a container ran for BackOffReset (default 10 min).
	BackOffInitial, BackOffMax, BackOffReset time.Duration
	// Mesh sets up the node's side of meshed pods (nil: none).
	Mesh Mesh

	// MinGracePeriod is the least time a container gets between SIGTERM
	// and SIGKILL (default 2 s, as the kubelet).
	MinGracePeriod time.Duration
}

func (o *Options) setDefaults() {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ServerPort == 0 {
		o.ServerPort = 10250
	}
	if o.MaxPods == 0 {
		o.MaxPods = 110
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 40 * time.Second
	}
	if o.LeaseRenewInterval == 0 {
		o.LeaseRenewInterval = 10 * time.Second
	}
	if o.NodeStatusUpdateFrequency == 0 {
		o.NodeStatusUpdateFrequency = 10 * time.Second
	}
	if o.NodeStatusReportFrequency == 0 {
		o.NodeStatusReportFrequency = 5 * time.Minute
	}
	if o.SyncFrequency == 0 {
		o.SyncFrequency = 30 * time.Second
	}
	if o.BackOffInitial == 0 {
		o.BackOffInitial = 10 * time.Second
	}
	if o.BackOffMax == 0 {
		o.BackOffMax = 5 * time.Minute
	}
	if o.BackOffReset == 0 {
		o.BackOffReset = 10 * time.Minute
	}
	if o.MinGracePeriod == 0 {
		o.MinGracePeriod = 2 * time.Second
	}
}

// Agent is a node agent. Make one with New and run it with Run.
type Agent struct {
	opts   Options
	log    *slog.Logger
	client kubernetes.Interface
	rt     Runtime
	clock  clock.WithTicker

	// Set up by Run.
	recorder  record.EventRecorder
	podLister corelisters.PodLister
	svcLister corelisters.ServiceLister
	node      *nodeFacts

	crashBackOff *backOff
	imageBackOff *backOff

	queue workqueue.TypedRateLimitingInterface[podKey]

	mu         sync.Mutex
	workers    map[types.UID]*podWorker
	pullErrors map[string]string      // the last failed pull's message, by pod UID and image
	tokens     map[string]cachedToken // service account tokens, by pod UID and projection
	wg         sync.WaitGroup

	ready chan struct{}
}

// podKey names a pod for the queue: its UID and where to find it.
type podKey struct {
	UID             types.UID
	Namespace, Name string
}

// New returns an agent; it does no I/O and starts nothing.
func New(opts Options, log *slog.Logger) *Agent {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Agent{
		opts:         opts,
		log:          log.With("component", "agent", "node", opts.NodeName),
		client:       opts.Client,
		rt:           opts.Runtime,
		clock:        opts.Clock,
		crashBackOff: newBackOff(opts.Clock, opts.BackOffInitial, opts.BackOffMax, opts.BackOffReset),
		imageBackOff: newBackOff(opts.Clock, opts.BackOffInitial, opts.BackOffMax, opts.BackOffReset),
		workers:      map[types.UID]*podWorker{},
		pullErrors:   map[string]string{},
		tokens:       map[string]cachedToken{},
		ready:        make(chan struct{}),
	}
}

// Ready is closed once the node is registered and the pods' cache has
// synced.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run registers the node, then runs pods until ctx ends. It returns nil
// then; containers keep running (a new Agent adopts them).
func (a *Agent) Run(ctx context.Context) error {
	if a.opts.NodeName == "" || a.client == nil || a.rt == nil || a.opts.DataDir == "" {
		return errors.New("agent: NodeName, Client, Runtime and DataDir are required")
	}
	facts, err := gatherNodeFacts(a.opts)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.node = facts
	a.recorder = a.opts.Recorder
	if a.recorder == nil {
		// Not bound to ctx: events of the last syncs still go out; Run
		// shuts it down once its workers stopped.
		broadcaster := record.NewBroadcaster()
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
		defer broadcaster.Shutdown()
		a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.opts.NodeName})
	}
	if err := a.registerNode(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("agent: register node: %w", err)
	}

	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[podKey](200*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[podKey]{Name: "agent-pods"})
	defer a.queue.ShutDown()

	podFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.opts.NodeName).String()
		}))
	podInf := podFactory.Core().V1().Pods()
	a.podLister = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueuePod,
		UpdateFunc: func(_, obj any) { a.enqueuePod(obj) },
		DeleteFunc: a.enqueuePod,
	}); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// Services give pods their *_SERVICE_HOST variables.
	svcFactory := informers.NewSharedInformerFactory(a.client, 0)
	svcInf := svcFactory.Core().V1().Services()
	a.svcLister = svcInf.Lister()
	svcSynced := svcInf.Informer().HasSynced

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	podFactory.Start(ctx.Done())
	svcFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer svcFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, svcSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("agent: caches did not sync")
	}

	var loops sync.WaitGroup
	loops.Go(func() { a.renewLease(ctx) })
	loops.Go(func() { a.syncNodeStatus(ctx) })
	loops.Go(func() { a.dispatch(ctx) })
	loops.Go(func() { a.resync(ctx) })

	// Pods the runtime or the disk knows of but the API does not (deleted
	// while the agent was down) get a worker that cleans them up.
	if err := a.adoptOrphans(ctx); err != nil {
		a.log.Warn("looking for orphaned pods", "err", err)
	}
	a.log.Info("node agent ready")
	close(a.ready)

	<-ctx.Done()
	a.queue.ShutDown()
	loops.Wait()
	a.wg.Wait()
	return nil
}

// enqueuePod is the informer's handler: it only queues the pod's key.
func (a *Agent) enqueuePod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.queue.Add(podKey{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name})
}

// dispatch hands queued keys to their pods' workers, starting workers as
// needed.
func (a *Agent) dispatch(ctx context.Context) {
	for {
		key, quit := a.queue.Get()
		if quit {
			return
		}
		a.wake(ctx, key)
		a.queue.Done(key)
	}
}

// wake pokes the pod's worker, starting one if it has none.
func (a *Agent) wake(ctx context.Context, key podKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	w := a.workers[key.UID]
	if w == nil {
		w = newPodWorker(key)
		a.workers[key.UID] = w
		a.wg.Go(func() { a.runWorker(ctx, w) })
	}
	w.poke()
}

// forget drops a finished worker.
func (a *Agent) forget(w *podWorker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.workers[w.key.UID] == w {
		delete(a.workers, w.key.UID)
	}
}

// resync wakes every pod's worker every SyncFrequency and collects stale
// back-off entries.
func (a *Agent) resync(ctx context.Context) {
	t := a.clock.NewTicker(a.opts.SyncFrequency)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		a.mu.Lock()
		keys := make([]podKey, 0, len(a.workers))
		for _, w := range a.workers {
			keys = append(keys, w.key)
		}
		a.mu.Unlock()
		for _, k := range keys {
			a.queue.Add(k)
		}
		pods, _ := a.podLister.List(everything())
		for _, p := range pods {
			a.queue.Add(podKey{UID: p.UID, Namespace: p.Namespace, Name: p.Name})
		}
		a.crashBackOff.gc()
		a.imageBackOff.gc()
	}
}

// adoptOrphans queues the pods that have containers in the runtime or a
// directory under DataDir but are not bound to this node in the API.
func (a *Agent) adoptOrphans(ctx context.Context) error {
	known := map[types.UID]bool{}
	pods, err := a.podLister.List(everything())
	if err != nil {
		return err
	}
	for _, p := range pods {
		known[p.UID] = true
		a.queue.Add(podKey{UID: p.UID, Namespace: p.Namespace, Name: p.Name})
	}
	orphans := map[types.UID]bool{}
	records, err := a.rt.List(ctx, "")
	if err != nil {
		return err
	}
	for _, r := range records {
		if uid := types.UID(r.PodUID); !known[uid] {
			orphans[uid] = true
		}
	}
	for _, sb := range a.rt.Sandboxes() {
		if uid := types.UID(sb.PodUID); !known[uid] {
			orphans[uid] = true
		}
	}
	for _, uid := range podDirs(a.opts.DataDir) {
		if !known[uid] {
			orphans[uid] = true
		}
	}
	for uid := range orphans {
		a.log.Info("cleaning up a pod the API no longer has", "uid", uid)
		a.queue.Add(podKey{UID: uid})
	}
	return nil
}
