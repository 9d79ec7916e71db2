package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// podWorker reconciles one pod, one sync at a time, in its own goroutine.
// Its fields are the worker's memory between syncs; only probes (mu) are
// shared with other goroutines.
type podWorker struct {
	key  podKey
	wake chan struct{}

	// pod is the last version seen in the API (kept to finish the pod
	// when it vanishes).
	pod *corev1.Pod
	// reasons holds why each container last failed to start (kubelet's
	// reason cache): ErrImagePull, CreateContainerConfigError, ...
	reasons map[string]waitingReason
	// failedStarts are starts that failed before the runtime recorded a
	// container, by container name: each counts as an attempt that exited
	// with 128 (reason StartError, the error as message), as containerd
	// reports a container whose start failed.
	failedStarts map[string]ContainerStatus
	// failure is why the agent failed the pod itself (an active
	// deadline), if it did.
	failure *waitingReason
	// messages caches containers' termination messages by container ID.
	messages map[string]string
	// waiting are the container IDs whose exit a goroutine waits for.
	waiting map[string]context.CancelFunc
	// statusWritten is the last status the worker wrote (or found).
	statusWritten *corev1.PodStatus
	writtenAt     time.Time
	// seeded tells whether probe results were seeded from the API's
	// status (once, so that an agent restart keeps pods ready).
	seeded bool
	// meshSandbox is the sandbox whose mesh side (Options.Mesh) is set
	// up.
	meshSandbox string

	mu     sync.Mutex
	probes map[probeKey]*prober
	// seeds are verdicts taken from the API's status (see seedProbes).
	seeds map[probeKey]probeResult
}

// waitingReason is a container's Waiting state after a failed start.
type waitingReason struct {
	Reason, Message string
}

func newPodWorker(key podKey) *podWorker {
	return &podWorker{
		key:          key,
		wake:         make(chan struct{}, 1),
		reasons:      map[string]waitingReason{},
		failedStarts: map[string]ContainerStatus{},
		messages:     map[string]string{},
		waiting:      map[string]context.CancelFunc{},
		probes:       map[probeKey]*prober{},
		seeds:        map[probeKey]probeResult{},
	}
}

// poke asks the worker to sync soon; pokes while a sync is pending merge.
func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// runWorker syncs the pod each time it is woken until the pod is gone and
// cleaned up.
func (a *Agent) runWorker(ctx context.Context, w *podWorker) {
	defer func() {
		w.stopAll()
		for _, cancel := range w.waiting {
			cancel()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		res, err := a.syncPod(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.log.Info("pod sync failed; will retry", "pod", w.key.Namespace+"/"+w.key.Name, "uid", w.key.UID, "err", err)
			a.queue.AddRateLimited(w.key)
			continue
		}
		a.queue.Forget(w.key)
		if res.finished {
			a.forget(w)
			// A late event may have queued the pod again; it finds no
			// worker and starts one, which finds nothing to do.
			return
		}
		if res.again {
			w.poke()
		} else if res.after > 0 {
			a.queue.AddAfter(w.key, res.after)
		}
	}
}

// syncResult tells the worker what to do after a sync.
type syncResult struct {
	finished bool          // the pod is gone and cleaned up
	again    bool          // sync again at once (state changed under us)
	after    time.Duration // sync again after this long (back-offs)
}

// soonest keeps the earliest positive delay.
func (r *syncResult) soonest(d time.Duration) {
	if d > 0 && (r.after == 0 || d < r.after) {
		r.after = d
	}
}

// watchExit wakes the worker when the container exits.
func (a *Agent) watchExit(ctx context.Context, w *podWorker, id string) {
	if _, ok := w.waiting[id]; ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w.waiting[id] = cancel
	key := w.key
	a.wg.Go(func() {
		_, err := a.rt.Wait(wctx, id)
		if wctx.Err() != nil {
			return
		}
		if err != nil {
			// Not waitable (gone, or the runtime restarted): let the
			// periodic sync look again.
			a.log.Debug("waiting for container", "id", id, "err", err)
		}
		a.queue.Add(key)
	})
}

// unwatch stops waiting for containers not in keep.
func (w *podWorker) unwatch(keep map[string]bool) {
	for id, cancel := range w.waiting {
		if !keep[id] {
			cancel()
			delete(w.waiting, id)
		}
	}
}

func everything() labels.Selector { return labels.Everything() }
