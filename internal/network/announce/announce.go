// Package announce makes LoadBalancer addresses reachable on the node's
// network the way MetalLB's layer-2 speaker does: the node that owns an
// address answers ARP who-has requests for it on its uplink interface with
// the interface's MAC, and sends gratuitous ARP (a request and a reply,
// broadcast, three times over two seconds) when it starts announcing, so
// that neighbours update their caches at once, also after a failover.
// The address is never added to an interface: traffic for it arrives at
// the node and the service proxy DNATs it to the Service's endpoints.
//
// Only addresses of Options.Pool (the servicelb controller's pool) found
// in Services' status.loadBalancer.ingress are announced, and for each
// Service exactly one node does: the first by name among the Ready nodes
// not labelled node.kubernetes.io/exclude-from-external-load-balancers
// (and, for externalTrafficPolicy Local, holding a serving endpoint).
// Without a pool LoadBalancers get node addresses, which the kernel
// already answers for; the announcer then does nothing. IPv4 only (no
// NDP).
//
// Only the node's composition root (internal/daemon) should import this
// package.
package announce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Pool says which addresses are load-balancer addresses
// (*servicelb.Pool is one).
type Pool interface {
	Contains(netip.Addr) bool
}

// Options configure an Announcer.
type Options struct {
	// NodeName is this node.
	NodeName string
	// Interface is the uplink the addresses are announced on (default:
	// the interface of the IPv4 default route).
	Interface string
	// Pool holds the addresses this node may announce. Nil (also a nil
	// *servicelb.Pool): none.
	Pool Pool
}

// Gratuitous ARP on taking an address: this many, this far apart.
const (
	gratuitousCount    = 3
	gratuitousInterval = time.Second
)

// Announcer answers ARP for the LoadBalancer addresses this node owns.
type Announcer struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   Options

	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced

	queueOnce sync.Once
	q         workqueue.TypedRateLimitingInterface[string]

	owned atomic.Pointer[map[netip.Addr]string] // address → Service key
	ready chan struct{}
}

// New returns an announcer fed by factory's Service, Node and
// EndpointSlice informers. It does no I/O; Run announces.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Announcer {
	if log == nil {
		log = slog.Default()
	}
	a := &Announcer{
		client: client,
		log:    log.With("component", "announce"),
		opts:   opts,
		ready:  make(chan struct{}),
	}
	empty := map[netip.Addr]string{}
	a.owned.Store(&empty)
	if v := reflect.ValueOf(opts.Pool); opts.Pool == nil || (v.Kind() == reflect.Pointer && v.IsNil()) {
		a.opts.Pool = nil // a nil *servicelb.Pool too: no pool
		return a
	}
	svcInf := factory.Core().V1().Services()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	a.services, a.nodes, a.slices = svcInf.Lister(), nodeInf.Lister(), sliceInf.Lister()
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.queue().Add("sync") },
		UpdateFunc: func(any, any) { a.queue().Add("sync") },
		DeleteFunc: func(any) { a.queue().Add("sync") },
	}
	for _, inf := range []cache.SharedIndexInformer{svcInf.Informer(), nodeInf.Informer(), sliceInf.Informer()} {
		_, _ = inf.AddEventHandler(kick)
		a.synced = append(a.synced, inf.HasSynced)
	}
	return a
}

func (a *Announcer) queue() workqueue.TypedRateLimitingInterface[string] {
	a.queueOnce.Do(func() {
		a.q = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "announce"})
	})
	return a.q
}

// Ready is closed once the announcer answers ARP.
func (a *Announcer) Ready() <-chan struct{} { return a.ready }

// Announced lists the addresses this node answers for now.
func (a *Announcer) Announced() []netip.Addr {
	out := slices.Collect(maps.Keys(*a.owned.Load()))
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Run opens the ARP socket on the uplink, waits for the caches and
// answers until ctx ends; it returns nil then. Without a pool it only
// waits for ctx.
func (a *Announcer) Run(ctx context.Context) error {
	q := a.queue()
	defer q.ShutDown()
	if a.opts.Pool == nil {
		a.log.Info("no address pool: nothing to announce")
		close(a.ready)
		<-ctx.Done()
		return nil
	}
	ifname := a.opts.Interface
	if ifname == "" {
		var err error
		if ifname, err = defaultRouteInterface(); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	conn, err := openARP(ifname)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	defer conn.close()
	if !cache.WaitForCacheSync(ctx.Done(), a.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("announce: caches did not sync")
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.answer(conn) })
	a.log.Info("answering ARP", "interface", ifname, "mac", conn.mac.String())
	close(a.ready)
	q.Add("sync")
	wg.Go(func() {
		for {
			key, quit := q.Get()
			if quit {
				return
			}
			a.reconcile(ctx, conn, &wg)
			q.Done(key)
		}
	})
	<-ctx.Done()
	q.ShutDown()
	conn.close() // ends answer's read
	wg.Wait()
	return nil
}

// reconcile works out the addresses this node owns now, and announces
// the new ones.
func (a *Announcer) reconcile(ctx context.Context, conn *arpConn, wg *sync.WaitGroup) {
	want := a.desired()
	have := *a.owned.Load()
	a.owned.Store(&want)
	for ip, key := range want {
		if _, ok := have[ip]; ok {
			continue
		}
		a.log.Info("announcing", "ip", ip.String(), "service", key)
		wg.Go(func() { a.sendGratuitous(ctx, conn, ip) })
	}
	for ip, key := range have {
		if _, ok := want[ip]; !ok {
			a.log.Info("no longer announcing", "ip", ip.String(), "service", key)
		}
	}
}

// desired maps the pool addresses of the Services this node owns to the
// Services.
func (a *Announcer) desired() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	svcs, _ := a.services.List(labels.Everything())
	nodes, _ := a.nodes.List(labels.Everything())
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		var ips []netip.Addr
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(ing.IP); err == nil && ip.Unmap().Is4() && a.opts.Pool.Contains(ip.Unmap()) {
				ips = append(ips, ip.Unmap())
			}
		}
		if len(ips) == 0 {
			continue
		}
		var sl []*discoveryv1.EndpointSlice
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			sl, _ = a.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
		}
		if owner(svc, nodes, sl) != a.opts.NodeName {
			continue
		}
		for _, ip := range ips {
			out[ip] = svc.Namespace + "/" + svc.Name
		}
	}
	return out
}

func (a *Announcer) sendGratuitous(ctx context.Context, conn *arpConn, ip netip.Addr) {
	for i := range gratuitousCount {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(gratuitousInterval):
			}
		}
		if _, still := (*a.owned.Load())[ip]; !still {
			return
		}
		for _, p := range gratuitous(ip, conn.mac) {
			if err := conn.send(p); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					a.log.Warn("gratuitous ARP", "ip", ip.String(), "err", err)
				}
				return
			}
		}
	}
}

// answer replies to who-has requests for owned addresses until the
// socket is closed.
func (a *Announcer) answer(conn *arpConn) {
	buf := make([]byte, 1514)
	for {
		n, outgoing, err := conn.read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			a.log.Warn("reading ARP", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if outgoing {
			continue
		}
		p, ok := parseARP(buf[:n])
		if !ok || p.op != arpRequest || bytes.Equal(p.senderMAC, conn.mac) || p.senderIP == p.targetIP {
			continue
		}
		if !bytes.Equal(p.ethDst, broadcast) && !bytes.Equal(p.ethDst, conn.mac) {
			continue
		}
		if _, ok := (*a.owned.Load())[p.targetIP]; !ok {
			continue
		}
		if err := conn.send(replyTo(p, p.targetIP, conn.mac)); err != nil && !errors.Is(err, os.ErrClosed) {
			a.log.Warn("ARP reply", "ip", p.targetIP.String(), "to", p.senderIP.String(), "err", err)
		}
	}
}

// defaultRouteInterface names the interface of the IPv4 default route.
func defaultRouteInterface() (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil && !(r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) {
			continue
		}
		if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			return link.Attrs().Name, nil
		}
	}
	return "", errors.New("no IPv4 default route to find the uplink interface by; set the interface")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}
