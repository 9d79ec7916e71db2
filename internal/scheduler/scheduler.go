package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Defaults, as kube-scheduler's.
const (
	DefaultInitialBackoff       = 1 * time.Second
	DefaultMaxBackoff           = 10 * time.Second
	DefaultUnschedulableTimeout = 5 * time.Minute
	DefaultBindParallelism      = 16
)

// Options tunes the scheduler. The zero value behaves as kube-scheduler's
// default profile.
type Options struct {
	// SchedulerName is the spec.schedulerName of the pods to schedule
	// (default "default-scheduler"; pods with none count as that).
	SchedulerName string
	// Profile is the filters and scores (default DefaultProfile()).
	Profile *Profile
	// Clock reads the time for backoffs (default: the real clock).
	Clock clock.PassiveClock
	// InitialBackoff and MaxBackoff bound the wait before a pod that did
	// not fit is tried again; it doubles with each failed attempt.
	InitialBackoff, MaxBackoff time.Duration
	// UnschedulableTimeout is the longest a pod that fits nowhere waits for
	// a helpful event before it is tried again.
	UnschedulableTimeout time.Duration
	// BindParallelism is how many bindings (and status writes) may be in
	// flight at once.
	BindParallelism int
}

// Scheduler binds pending pods to nodes.
type Scheduler struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options

	pods   corelisters.PodLister
	synced []toolscache.InformerSynced

	cache *cache
	queue *podQueue

	// cycleMu serializes scheduling cycles: a cycle and the assume that
	// ends it must not interleave with another.
	cycleMu sync.Mutex
	rand    *rand.Rand
	// inflight bounds the background API writes; writes tracks them.
	inflight chan struct{}
	writes   sync.WaitGroup
}

// New returns a scheduler that watches pods, nodes and namespaces through
// factory and records events with recorder. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Scheduler {
	if opts.SchedulerName == "" {
		opts.SchedulerName = corev1.DefaultSchedulerName
	}
	if opts.Profile == nil {
		opts.Profile = DefaultProfile()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.InitialBackoff)
	}
	if opts.UnschedulableTimeout <= 0 {
		opts.UnschedulableTimeout = DefaultUnschedulableTimeout
	}
	if opts.BindParallelism <= 0 {
		opts.BindParallelism = DefaultBindParallelism
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	s := &Scheduler{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "scheduler"),
		opts:     opts,
		cache:    newCache(),
		queue:    newPodQueue(opts.Clock, opts.InitialBackoff, opts.MaxBackoff),
		rand:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		inflight: make(chan struct{}, opts.BindParallelism),
	}
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	nsInf := factory.Core().V1().Namespaces()
	s.pods = podInf.Lister()
	// Errors only come from adding handlers to a stopped informer.
	podReg, _ := podInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.addPod,
		UpdateFunc: s.updatePod,
		DeleteFunc: s.deletePod,
	})
	nodeReg, _ := nodeInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.addNode,
		UpdateFunc: s.updateNode,
		DeleteFunc: s.deleteNode,
	})
	nsReg, _ := nsInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.setNamespace,
		UpdateFunc: func(_, cur any) { s.setNamespace(cur) },
		DeleteFunc: s.deleteNamespace,
	})
	for _, r := range []toolscache.ResourceEventHandlerRegistration{podReg, nodeReg, nsReg} {
		if r != nil {
			s.synced = append(s.synced, r.HasSynced)
		}
	}
	return s
}

// Run waits until the handlers have seen the informers' initial lists,
// then schedules with the given number of workers until ctx ends. Workers
// run scheduling cycles one at a time (each cycle sees the previous one's
// choice) and hand the API calls — bindings, events, status updates — to
// background writes.
func (s *Scheduler) Run(ctx context.Context, workers int) error {
	defer s.queue.shutDown()
	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("scheduler: caches did not sync")
	}
	nodes, pods, _ := s.cache.counts()
	s.log.Info("started", "workers", workers, "nodes", nodes, "pods", pods)
	var wg sync.WaitGroup
	wg.Go(func() { s.flushLoop(ctx) })
	for range max(workers, 1) {
		wg.Go(func() {
			for s.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	s.queue.shutDown()
	wg.Wait()
	s.writes.Wait()
	return nil
}

// flushLoop retries pods parked for longer than the unschedulable timeout.
func (s *Scheduler) flushLoop(ctx context.Context) {
	t := time.NewTicker(min(30*time.Second, max(s.opts.UnschedulableTimeout/2, 10*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.queue.flush(s.opts.UnschedulableTimeout)
		}
	}
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// responsible reports whether the pod waits for this scheduler.
func (s *Scheduler) responsible(pod *corev1.Pod) bool {
	name := pod.Spec.SchedulerName
	return pod.Spec.NodeName == "" && (name == s.opts.SchedulerName || name == "" && s.opts.SchedulerName == corev1.DefaultSchedulerName)
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// processNext schedules the next pod. The background write it may start
// marks the key done when it ends, so the pod is not picked up again
// meanwhile.
func (s *Scheduler) processNext(ctx context.Context) bool {
	key, quit := s.queue.get()
	if quit {
		return false
	}
	write := s.scheduleOne(key)
	if write == nil {
		s.queue.done(key)
		return true
	}
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		s.queue.done(key)
		return true
	}
	s.writes.Go(func() {
		defer func() { <-s.inflight; s.queue.done(key) }()
		write(ctx)
	})
	return true
}

// scheduleOne runs one scheduling cycle for the pod with key and returns
// the API work that follows (nil when there is none).
func (s *Scheduler) scheduleOne(key string) func(context.Context) {
	ns, name, _ := toolscache.SplitMetaNamespaceKey(key)
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.queue.forget(key)
		return nil
	}
	if err != nil {
		s.queue.retry(key)
		return nil
	}
	if !s.responsible(pod) || pod.DeletionTimestamp != nil || terminal(pod) {
		s.queue.forget(key)
		return nil
	}
	if s.cache.isAssumed(pod.UID) {
		return nil // bound a moment ago; the informer has not shown it yet
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		s.queue.forget(key)
		return func(ctx context.Context) {
			s.setCondition(ctx, pod, corev1.PodReasonSchedulingGated, "Scheduling is blocked due to non-empty scheduling gates")
		}
	}
	var res Result
	s.cycleMu.Lock()
	moves := s.queue.startCycle(key)
	s.cache.withSnapshot(func(snap *Snapshot) {
		state := NewCycleState(pod, snap)
		res, err = s.opts.Profile.Schedule(state, s.rand.IntN)
		if fe, ok := errors.AsType[*FitError](err); ok {
			fe.PostFilterMsg = s.opts.Profile.PreemptionMessage(state, fe)
		}
	})
	if err == nil {
		assumed := pod.DeepCopy()
		assumed.Spec.NodeName = res.Node
		s.cache.assume(assumed)
	}
	s.cycleMu.Unlock()
	if err != nil {
		rejectedBy := map[string]bool{}
		if fe, ok := errors.AsType[*FitError](err); ok {
			for _, st := range fe.Statuses {
				rejectedBy[st.Plugin] = true
			}
		}
		s.queue.park(key, moves, rejectedBy)
		s.log.Debug("unschedulable", "pod", key, "reason", err)
		msg := truncate(err.Error())
		return func(ctx context.Context) {
			s.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
			s.setCondition(ctx, pod, corev1.PodReasonUnschedulable, msg)
		}
	}
	return func(ctx context.Context) { s.bind(ctx, key, pod, res.Node) }
}

// noteLimit is the longest event message the API takes; upstream cuts
// scheduling messages to it.
const noteLimit = 1024

func truncate(msg string) string {
	if len(msg) <= noteLimit {
		return msg
	}
	return msg[:noteLimit-3] + "..."
}
