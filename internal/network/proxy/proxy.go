package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/network/netns"
)

// indexByService indexes EndpointSlices by "namespace/service".
const indexByService = "skiff-proxy-service"

// staleGrace is how long a flushed chain waits before it is deleted.
const staleGrace = 2 * time.Second

// Retry back-off after a failed batch.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 30 * time.Second
)

// Proxy keeps the node's service table in step with Services and
// EndpointSlices.
type Proxy struct {
	log  *slog.Logger
	opts Options

	services corelisters.ServiceLister
	slices   cache.Indexer
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	setupErr error

	mu     sync.Mutex
	dirty  map[types.NamespacedName]bool
	resync bool
	wake   chan struct{}

	ready     chan struct{}
	readyOnce sync.Once
}

// New returns a Proxy that watches Services, EndpointSlices and Nodes
// through factory. It registers its handlers and does nothing else; the
// client is not used (the Proxy only reads).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Proxy {
	_ = client
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	nodeInf := factory.Core().V1().Nodes()
	p := &Proxy{
		log:      log.With("component", "proxy"),
		opts:     opts,
		services: svcInf.Lister(),
		slices:   sliceInf.Informer().GetIndexer(),
		nodes:    nodeInf.Lister(),
		dirty:    map[types.NamespacedName]bool{},
		wake:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
	}
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{indexByService: sliceServiceKeys}); err != nil {
		p.setupErr = fmt.Errorf("proxy: index EndpointSlices: %w", err)
	}
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.onService,
		UpdateFunc: func(_, cur any) { p.onService(cur) },
		DeleteFunc: p.onService,
	})
	_, _ = sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: p.onSlice,
		UpdateFunc: func(old, cur any) {
			p.onSlice(old) // the service-name label may have changed
			p.onSlice(cur)
		},
		DeleteFunc: p.onSlice,
	})
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.onNode(nil, obj) },
		UpdateFunc: p.onNode,
		DeleteFunc: func(obj any) { p.onNode(obj, nil) },
	})
	p.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced, nodeInf.Informer().HasSynced}
	return p
}

// Ready is closed once the table first matches the caches.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

func sliceServiceKeys(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := sl.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{sl.Namespace + "/" + name}, nil
}

func (p *Proxy) enqueue(key types.NamespacedName) {
	p.mu.Lock()
	p.dirty[key] = true
	p.mu.Unlock()
	p.poke()
}

func (p *Proxy) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Proxy) onService(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if svc, ok := obj.(*corev1.Service); ok {
		p.enqueue(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
	}
}

func (p *Proxy) onSlice(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if sl, ok := obj.(*discoveryv1.EndpointSlice); ok {
		if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
			p.enqueue(types.NamespacedName{Namespace: sl.Namespace, Name: name})
		}
	}
}

// onNode wakes the loop when this node's change alters the configuration
// (zone, pod CIDR, addresses); the loop then rewrites the table.
func (p *Proxy) onNode(old, cur any) {
	node := func(obj any) *corev1.Node {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		n, _ := obj.(*corev1.Node)
		if n == nil || n.Name != p.opts.NodeName {
			return nil
		}
		return n
	}
	o, c := node(old), node(cur)
	if (o != nil || c != nil) && !p.opts.configFor(o).equal(p.opts.configFor(c)) {
		p.mu.Lock()
		p.resync = true
		p.mu.Unlock()
		p.poke()
	}
}

// Run waits for the caches, writes the whole table, then keeps it in step
// until ctx ends. It returns nil then, leaving the table in place so that
// Services keep working while the node agent restarts; Cleanup removes it.
func (p *Proxy) Run(ctx context.Context) error {
	if p.setupErr != nil {
		return p.setupErr
	}
	if err := p.opts.validate(); err != nil {
		return err
	}
	nsFile, err := openNetNS(p.opts.NetNS)
	if err != nil {
		return err
	}
	defer nsFile.Close()
	k := newKernel(p.opts.Table, int(nsFile.Fd()))
	defer k.close()
	nl, err := netlink.NewHandleAt(vnetns.NsHandle(nsFile.Fd()))
	if err != nil {
		return fmt.Errorf("proxy: netlink: %w", err)
	}
	defer nl.Close()

	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return nil // ctx ended
	}
	p.log.Info("caches synced", "table", p.opts.Table, "node", p.opts.NodeName)
	l := &loop{p: p, k: k, nl: nl, needFull: true}
	return l.run(ctx)
}

// Cleanup deletes the Proxy's table (and nothing else); a missing table
// is fine. Run must have returned.
func (p *Proxy) Cleanup(ctx context.Context) error {
	nsFile, err := openNetNS(p.opts.NetNS)
	if err != nil {
		return err
	}
	defer nsFile.Close()
	k := newKernel(p.opts.Table, int(nsFile.Fd()))
	defer k.close()
	if err := k.deleteTable(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	p.log.Info("table removed", "table", p.opts.Table)
	return nil
}

// openNetNS opens the namespace at path, or the calling thread's.
func openNetNS(path string) (*os.File, error) {
	if path != "" {
		f, err := netns.Open(path)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		return f, nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("proxy: open own network namespace: %w", err)
	}
	return f, nil
}

// loop is Run's state: only its goroutine touches it.
type loop struct {
	p        *Proxy
	k        *kernel
	nl       *netlink.Handle
	st       *state
	needFull bool
	lastFull time.Time
	retry    time.Duration // back-off after a failure; 0 when healthy
}

func (l *loop) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.p.wake:
		case <-timer.C:
		}
		l.syncOnce(time.Now())
		l.deleteStale(time.Now())
		timer.Reset(l.nextWake(time.Now()))
	}
}

// nextWake is when the loop must run again without news: a retry, a
// stale chain due, the periodic full sync.
func (l *loop) nextWake(now time.Time) time.Duration {
	if l.retry > 0 {
		return l.retry
	}
	d := l.lastFull.Add(l.p.opts.FullSyncPeriod).Sub(now)
	if l.st != nil {
		for _, t := range l.st.stale {
			d = min(d, t.Add(staleGrace).Sub(now))
		}
	}
	return max(d, 10*time.Millisecond)
}

// syncOnce takes the pending work and writes it in one batch.
func (l *loop) syncOnce(now time.Time) {
	p := l.p
	p.mu.Lock()
	dirty := p.dirty
	p.dirty = map[types.NamespacedName]bool{}
	resync := p.resync
	p.resync = false
	p.mu.Unlock()

	cfg := p.opts.configFor(p.node())
	full := l.needFull || resync || l.st == nil || !l.st.cfg.equal(cfg) ||
		now.Sub(l.lastFull) >= p.opts.FullSyncPeriod
	var err error
	if full {
		err = l.fullSync(cfg, now)
	} else if len(dirty) > 0 {
		err = l.update(dirty, now)
	}
	if err != nil {
		l.needFull = true // the next try rewrites everything, dirty keys included
		l.retry = min(max(2*l.retry, minRetry), maxRetry)
		p.log.Error("sync failed; retrying", "in", l.retry, "err", err)
		return
	}
	l.retry = 0
}

func (l *loop) fullSync(cfg *config, now time.Time) error {
	start := time.Now()
	services, err := l.translateAll(cfg)
	if err != nil {
		return err
	}
	chains, sets, err := l.k.list()
	if err != nil {
		return err
	}
	pl := full(cfg, services, chains, sets, now)
	if err := l.k.apply(pl); err != nil {
		return err
	}
	old := l.st
	l.st = newState(cfg)
	l.st.commit(pl)
	l.needFull = false
	l.lastFull = now
	if old != nil {
		l.forgetFlows(old.services, l.st.services)
	}
	l.p.log.Info("table written", "services", len(services), "chains", len(pl.next.chains),
		"elements", len(pl.next.elems), "took", time.Since(start).Round(time.Microsecond))
	l.p.readyOnce.Do(func() { close(l.p.ready) })
	return nil
}

func (l *loop) update(dirty map[types.NamespacedName]bool, now time.Time) error {
	start := time.Now()
	changes := map[types.NamespacedName]*serviceRules{}
	for key := range dirty {
		sr, err := l.translate(key, l.st.cfg)
		if err != nil {
			return err
		}
		changes[key] = sr
	}
	pl := l.st.update(changes, now)
	if !pl.empty() {
		if err := l.k.apply(pl); err != nil {
			return err
		}
	}
	old := map[types.NamespacedName]*serviceRules{}
	for key := range changes {
		old[key] = l.st.services[key]
	}
	l.st.commit(pl)
	l.forgetFlows(old, changes)
	l.p.log.Debug("table updated", "services", len(changes), "chains", len(pl.addChains)+len(pl.fillChains)+len(pl.flush),
		"elements", len(pl.addElems)+len(pl.delElems), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// deleteStale deletes the chains that have been stale long enough.
func (l *loop) deleteStale(now time.Time) {
	if l.st == nil {
		return
	}
	due := l.st.dueStale(now.Add(-staleGrace))
	if len(due) == 0 {
		return
	}
	if err := l.k.deleteChains(due); err != nil {
		// Still referenced somehow: the next full sync flushes and
		// retries them.
		l.p.log.Warn("delete stale chains", "chains", len(due), "err", err)
		l.needFull = true
		for _, c := range due {
			delete(l.st.stale, c)
		}
		return
	}
	for _, c := range due {
		delete(l.st.stale, c)
	}
}

// translateAll translates every Service in the cache.
func (l *loop) translateAll(cfg *config) (map[types.NamespacedName]*serviceRules, error) {
	svcs, err := l.p.services.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make(map[types.NamespacedName]*serviceRules, len(svcs))
	for _, svc := range svcs {
		key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		sls, err := l.slicesOf(key)
		if err != nil {
			return nil, err
		}
		if sr := translateService(svc, sls, cfg); sr != nil {
			out[key] = sr
		}
	}
	return out, nil
}

// translate translates one Service as the caches have it now (nil: gone
// or without rules).
func (l *loop) translate(key types.NamespacedName, cfg *config) (*serviceRules, error) {
	svc, err := l.p.services.Services(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sls, err := l.slicesOf(key)
	if err != nil {
		return nil, err
	}
	return translateService(svc, sls, cfg), nil
}

func (l *loop) slicesOf(key types.NamespacedName) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := l.p.slices.ByIndex(indexByService, key.Namespace+"/"+key.Name)
	if err != nil {
		return nil, err
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, sl)
		}
	}
	return out, nil
}

// node is this node's Node from the cache, or nil.
func (p *Proxy) node() *corev1.Node {
	if p.opts.NodeName == "" {
		return nil
	}
	n, err := p.nodes.Get(p.opts.NodeName)
	if err != nil {
		return nil
	}
	return n
}
