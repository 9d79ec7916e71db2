package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"skiff.dev/skiff/internal/network/netns"
)

// Options configure an Enforcer.
type Options struct {
	// NodeName: pods with this spec.nodeName are isolated by this node;
	// pods anywhere are peers. "" isolates every pod (one-node clusters,
	// tests).
	NodeName string
	// NodeDNS are the addresses of the node's DNS server as pods reach it
	// (the pods network's gateway, e.g. 10.244.0.1). Selectors see each as
	// a kube-system pod labelled k8s-app=kube-dns (see the package
	// documentation). Empty: no such pod.
	NodeDNS []netip.Addr
	// Table is the nftables table (family ip) the Enforcer owns. Default
	// "skiff-policy".
	Table string
	// NetNS is the path of the network namespace to program. Default: the
	// namespace of the thread that calls Run.
	NetNS string
}

// Enforcer programs the node's policy table from the NetworkPolicies, Pods
// and Namespaces in the API.
type Enforcer struct {
	log    *slog.Logger
	opts   Options
	pods   corelisters.PodLister
	nss    corelisters.NamespaceLister
	pols   networkinglisters.NetworkPolicyLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	readyOnce sync.Once
	ready     chan struct{}
}

// syncKey is the queue's only key: every change leads to one
// level-triggered sync of the whole table, and bursts collapse into one.
const syncKey = "sync"

// New returns an Enforcer that watches NetworkPolicies, Pods and Namespaces
// through factory (which the caller starts). It does no I/O. client is
// not used today: the Enforcer only reads, through factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Enforcer {
	_ = client
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if log == nil {
		log = slog.Default()
	}
	podInf := factory.Core().V1().Pods()
	nsInf := factory.Core().V1().Namespaces()
	polInf := factory.Networking().V1().NetworkPolicies()
	e := &Enforcer{
		log:   log.With("component", "networkpolicy"),
		opts:  opts,
		pods:  podInf.Lister(),
		nss:   nsInf.Lister(),
		pols:  polInf.Lister(),
		ready: make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "networkpolicy"}),
	}
	enqueue := func(any) { e.queue.Add(syncKey) }
	_, _ = polInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
		DeleteFunc: enqueue,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Pod)
			c, ok2 := cur.(*corev1.Pod)
			if !ok1 || !ok2 || podChanged(o, c) {
				enqueue(cur)
			}
		},
		DeleteFunc: enqueue,
	})
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Namespace)
			c, ok2 := cur.(*corev1.Namespace)
			if !ok1 || !ok2 || !maps.Equal(o.Labels, c.Labels) {
				enqueue(cur)
			}
		},
		DeleteFunc: enqueue,
	})
	e.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nsInf.Informer().HasSynced, polInf.Informer().HasSynced}
	return e
}

// podChanged reports whether a pod update can change the table (status
// updates mostly cannot).
func podChanged(o, c *corev1.Pod) bool {
	return !maps.Equal(o.Labels, c.Labels) ||
		o.Spec.NodeName != c.Spec.NodeName ||
		o.Spec.HostNetwork != c.Spec.HostNetwork ||
		o.Status.Phase != c.Status.Phase ||
		o.Status.PodIP != c.Status.PodIP ||
		!slices.Equal(o.Status.PodIPs, c.Status.PodIPs) ||
		!slices.EqualFunc(o.Spec.Containers, c.Spec.Containers, samePorts) ||
		!slices.EqualFunc(o.Spec.InitContainers, c.Spec.InitContainers, samePorts)
}

func samePorts(a, b corev1.Container) bool { return slices.Equal(a.Ports, b.Ports) }

// Ready is closed once the table first holds the policies of synced
// caches.
func (e *Enforcer) Ready() <-chan struct{} { return e.ready }

// Run waits for the caches, programs the table and keeps it up to date
// until ctx ends; then it deletes the table and returns.
func (e *Enforcer) Run(ctx context.Context) error {
	defer e.queue.ShutDown()
	ns, err := openNetNS(e.opts.NetNS)
	if err != nil {
		return fmt.Errorf("networkpolicy: %w", err)
	}
	defer ns.Close()
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("networkpolicy: caches did not sync")
	}
	k := newKernel(e.opts.Table, int(ns.Fd()), e.log)
	e.log.Info("started", "table", e.opts.Table, "node", e.opts.NodeName)
	e.queue.Add(syncKey)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e.processNext(k) {
		}
	}()
	<-ctx.Done()
	e.queue.ShutDown()
	<-done
	if err := k.remove(); err != nil {
		return fmt.Errorf("networkpolicy: %w", err)
	}
	return nil
}

func (e *Enforcer) processNext(k *kernel) bool {
	key, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(key)
	if err := e.sync(k); err != nil {
		e.log.Warn("will retry", "err", err)
		e.queue.AddRateLimited(key)
		return true
	}
	e.queue.Forget(key)
	e.readyOnce.Do(func() { close(e.ready) })
	return true
}

// sync computes the table from the caches and programs the difference.
func (e *Enforcer) sync(k *kernel) error {
	start := time.Now()
	in := Input{NodeName: e.opts.NodeName, NodeDNS: e.opts.NodeDNS}
	var err error
	if in.Pods, err = e.pods.List(labels.Everything()); err != nil {
		return err
	}
	if in.Namespaces, err = e.nss.List(labels.Everything()); err != nil {
		return err
	}
	if in.Policies, err = e.pols.List(labels.Everything()); err != nil {
		return err
	}
	rs := Translate(in)
	translated := time.Since(start)
	incremental, err := k.apply(rs)
	if err != nil {
		return err
	}
	e.log.Debug("table programmed", "policies", len(in.Policies), "isolated_ingress", len(rs.Ingress),
		"isolated_egress", len(rs.Egress), "sets", len(rs.Sets), "chains", len(rs.Chains),
		"incremental", incremental, "translate", translated, "total", time.Since(start))
	return nil
}

// openNetNS opens the namespace at path, or the calling thread's.
func openNetNS(path string) (*os.File, error) {
	if path != "" {
		return netns.Open(path)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	return f, nil
}
