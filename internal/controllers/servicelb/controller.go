// Package servicelb gives Services of type LoadBalancer an external
// address, as MetalLB's controller (layer 2 mode) or k3s's ServiceLB do:
//
//   - with an address pool (Options.Pool: CIDRs, ranges, addresses), each
//     Service gets one address of its primary IP family, the one it asks
//     for (spec.loadBalancerIP, or the metallb.io/loadBalancerIPs
//     annotation, or its older metallb.universe.tf spelling) or the first
//     free one; the node agents' announcer (internal/network/announce)
//     then answers ARP for it;
//   - without a pool, as k3s's ServiceLB, the Ready nodes' InternalIPs
//     (minus nodes labelled node.kubernetes.io/exclude-from-external-load-balancers),
//     and the oldest Service keeps a port when two want it on the nodes'
//     addresses.
//
// The address goes to status.loadBalancer.ingress (ipMode VIP), where
// `kubectl get svc` shows it as EXTERNAL-IP and the service proxy picks it
// up. Services with a loadBalancerClass other than ClassName belong to
// another implementation and are left alone. Allocations survive restarts:
// the controller starts from the addresses the Services' statuses hold
// (the oldest Service wins a duplicate). An address is released when its
// Service goes or stops being a LoadBalancer (whose status is then
// cleared), and a Service that found the pool exhausted gets it. Events:
// IPAllocated, AllocationFailed.
//
// Only the daemon should import this package (and the announcer's wiring
// may share ParsePool's result).
package servicelb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/workloop"
)

// ClassName is the loadBalancerClass this controller serves, besides
// Services that name no class.
const ClassName = "skiff.dev/servicelb"

// Annotations a Service may ask for an address with (MetalLB's; a
// comma-separated list, one address per family).
const (
	AnnotationLoadBalancerIPs           = "metallb.io/loadBalancerIPs"
	deprecatedAnnotationLoadBalancerIPs = "metallb.universe.tf/loadBalancerIPs"
)

// Options configure the controller.
type Options struct {
	// Pool lists the addresses Services may get: "203.0.113.0/28",
	// "203.0.113.100-203.0.113.120", "203.0.113.7" (see ParsePool).
	// Empty: the Ready nodes' InternalIPs.
	Pool []string
}

// Controller is the LoadBalancer address controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger

	pool    *Pool
	poolErr error
	alloc   *allocator

	mu      sync.Mutex
	onNodes map[string]bool // Services given the nodes' addresses (no pool)

	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	loop     *workloop.Loop
}

// New returns a controller watching Services (and Nodes, without a pool)
// through factory. It does no I/O; a bad pool is reported by Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	pool, err := ParsePool(opts.Pool)
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "servicelb-controller"),
		pool:     pool,
		poolErr:  err,
		alloc:    newAllocator(pool),
		onNodes:  map[string]bool{},
	}
	c.loop = workloop.New("servicelb", c.log, c.sync)
	svcInf := factory.Core().V1().Services()
	c.services = svcInf.Lister()
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onService,
		UpdateFunc: func(_, cur any) { c.onService(cur) },
		DeleteFunc: c.onService,
	})
	c.synced = append(c.synced, svcInf.Informer().HasSynced)
	if pool == nil {
		nodeInf := factory.Core().V1().Nodes()
		c.nodes = nodeInf.Lister()
		_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.enqueueAll() },
			UpdateFunc: func(old, cur any) {
				o, ok1 := old.(*corev1.Node)
				n, ok2 := cur.(*corev1.Node)
				if !ok1 || !ok2 || nodeChanged(o, n) {
					c.enqueueAll()
				}
			},
			DeleteFunc: func(any) { c.enqueueAll() },
		})
		c.synced = append(c.synced, nodeInf.Informer().HasSynced)
	}
	c.loop.WaitFor(c.synced...)
	return c
}

func (c *Controller) onService(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if svc, ok := obj.(*corev1.Service); ok {
		c.loop.Add(svc.Namespace + "/" + svc.Name)
	}
}

// enqueueAll looks at every LoadBalancer Service again.
func (c *Controller) enqueueAll() {
	svcs, _ := c.services.List(labels.Everything())
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			c.loop.Add(s.Namespace + "/" + s.Name)
		}
	}
}

// Run waits for the caches, takes the addresses the Services hold, then
// reconciles with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.poolErr != nil {
		return fmt.Errorf("servicelb: %w", c.poolErr)
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("servicelb: caches did not sync")
	}
	c.prime()
	if c.pool != nil {
		c.log.Info("allocating from pool", "pool", c.pool.String())
	} else {
		c.log.Info("no pool: LoadBalancers get the Ready nodes' addresses")
	}
	return c.loop.Run(ctx, max(workers, 1))
}

// prime takes back, oldest Service first, the pool addresses the
// Services' statuses show.
func (c *Controller) prime() {
	if c.pool == nil {
		return
	}
	svcs, _ := c.services.List(labels.Everything())
	slices.SortFunc(svcs, olderFirst)
	for _, svc := range svcs {
		if !handles(svc) {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ip, ok := parseIP(ing.IP); ok {
				if _, ok := c.alloc.claim(key, ip); ok {
					break
				}
			}
		}
	}
}

// olderFirst orders Services by age, then by key.
func olderFirst(a, b *corev1.Service) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
}

// handles says whether svc is a LoadBalancer of this controller's.
func handles(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == ClassName
}

// nodeChanged says whether a Node update matters to node addresses.
func nodeChanged(o, n *corev1.Node) bool {
	return nodeReady(o) != nodeReady(n) || !slices.Equal(o.Status.Addresses, n.Status.Addresses) ||
		excluded(o) != excluded(n)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func excluded(n *corev1.Node) bool {
	_, ok := n.Labels[corev1.LabelNodeExcludeBalancers]
	return ok
}
