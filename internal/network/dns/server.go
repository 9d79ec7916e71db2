package dns

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"skiff.dev/skiff/internal/errdefs"
)

// Defaults of Options.
const (
	DefaultListen          = "10.244.0.1:53"
	DefaultZone            = "cluster.local"
	DefaultTTL             = 5 * time.Second
	DefaultUpstreamTimeout = 2 * time.Second
	DefaultCacheSize       = 10000
)

// upstreamRefresh is how often the node's resolv.conf is read again.
const upstreamRefresh = 10 * time.Second

// Options configure a Server. The zero value serves cluster.local on the
// default pods gateway.
type Options struct {
	// NodeName is this node. When set, the server keeps the EndpointSlice
	// kube-system/kube-dns-<NodeName> pointing at its address (so that the
	// service proxy sends the kube-dns ClusterIP here) and deletes it when
	// Run returns.
	NodeName string
	// Listen is the address the server answers on, UDP and TCP: "ip" (port
	// 53) or "ip:port" (default DefaultListen, the pods bridge's gateway).
	// Port 0 takes a free port, the same for UDP and TCP. The address need
	// not exist yet: the sockets are bound with IP_FREEBIND.
	Listen string
	// EndpointIP is the address published in the node's kube-dns
	// EndpointSlice (default: Listen's address; needed when that is
	// unspecified, and for tests on loopback, which the API refuses in
	// EndpointSlices).
	EndpointIP string
	// Zone is the cluster's DNS domain (default cluster.local).
	Zone string
	// TTL of the zone's records and its SOA minimum (default 5 s; whole
	// seconds).
	TTL time.Duration
	// Upstreams ("ip" or "ip:port") answer names outside the zone. Default:
	// the nameservers of ResolvConf, read again when it changes.
	Upstreams []string
	// ResolvConf is the node's resolver configuration (default
	// /etc/resolv.conf). When it names only loopback servers,
	// /run/systemd/resolve/resolv.conf's are used.
	ResolvConf string
	// UpstreamTimeout bounds one exchange with one upstream (default 2 s).
	UpstreamTimeout time.Duration
	// CacheSize bounds the upstream answers kept (default 10,000; negative
	// keeps none).
	CacheSize int
}

func (o *Options) setDefaults() {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Zone == "" {
		o.Zone = DefaultZone
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
}

// Server is one node's cluster DNS server.
type Server struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   Options

	services     corelisters.ServiceLister
	slices       discoverylisters.EndpointSliceLister
	sliceIndexer cache.Indexer
	indexed      bool // sliceIndexer has byService
	synced       []cache.InformerSynced

	queueOnce sync.Once
	q         workqueue.TypedRateLimitingInterface[string]

	ix    *index
	fwd   *forwarder
	h     *handler
	addr  netip.AddrPort // set before ready closes
	ready chan struct{}

	lastLoopLog atomic.Int64
}

// selfKey is the queue key of the server's own EndpointSlice (no Service
// key is empty).
const selfKey = ""

// byService indexes EndpointSlices by the Service they belong to.
const byService = "skiff.dev/dns-service"

// New returns a server fed by factory's Service and EndpointSlice
// informers. It does no I/O; Run serves.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Server {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	s := &Server{
		client:       client,
		log:          log.With("component", "dns"),
		opts:         opts,
		services:     svcInf.Lister(),
		slices:       sliceInf.Lister(),
		sliceIndexer: sliceInf.Informer().GetIndexer(),
		ix:           newIndex(),
		ready:        make(chan struct{}),
	}
	s.indexed = sliceInf.Informer().AddIndexers(cache.Indexers{byService: sliceServiceKey}) == nil
	loopID := make([]byte, 8)
	_, _ = rand.Read(loopID)
	s.fwd = &forwarder{timeout: opts.UpstreamTimeout, loopID: loopID}
	if opts.CacheSize > 0 {
		s.fwd.cache = newCache(opts.CacheSize, time.Now)
	}
	s.h = &handler{
		zone:   canonical(opts.Zone),
		ttl:    uint32(max(opts.TTL/time.Second, 1)),
		ix:     s.ix,
		fwd:    s.fwd,
		loopID: loopID,
		onLoop: s.logLoop,
	}
	_, _ = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onService,
		UpdateFunc: func(_, cur any) { s.onService(cur) },
		DeleteFunc: s.onService,
	})
	_, _ = sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onSlice,
		UpdateFunc: func(old, cur any) { s.onSlice(old); s.onSlice(cur) },
		DeleteFunc: s.onSlice,
	})
	s.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	return s
}

// Ready is closed once the server answers.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server answers on; the zero AddrPort until
// Ready is closed.
func (s *Server) Addr() netip.AddrPort {
	select {
	case <-s.ready:
		return s.addr
	default:
		return netip.AddrPort{}
	}
}

func (s *Server) queue() workqueue.TypedRateLimitingInterface[string] {
	s.queueOnce.Do(func() {
		s.q = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "dns"})
	})
	return s.q
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (s *Server) onService(obj any) {
	svc, ok := unwrap(obj).(*corev1.Service)
	if !ok {
		return
	}
	s.queue().Add(svc.Namespace + "/" + svc.Name)
	if svc.Namespace == ServiceNamespace && svc.Name == ServiceName && s.opts.NodeName != "" {
		s.queue().Add(selfKey)
	}
}

func (s *Server) onSlice(obj any) {
	slice, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if k, err := sliceServiceKey(slice); err == nil && len(k) == 1 {
		s.queue().Add(k[0])
	}
	if s.opts.NodeName != "" && slice.Namespace == ServiceNamespace && slice.Name == SliceName(s.opts.NodeName) {
		s.queue().Add(selfKey)
	}
}

func sliceServiceKey(obj any) ([]string, error) {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := slice.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{slice.Namespace + "/" + name}, nil
}

// Run waits for the caches, indexes every Service, answers queries until
// ctx ends and returns nil then. An error means it could not start.
func (s *Server) Run(ctx context.Context) error {
	q := s.queue()
	defer q.ShutDown()
	listen, err := listenAddr(s.opts.Listen)
	if err != nil {
		return err
	}
	if s.opts.EndpointIP != "" {
		if _, err := netip.ParseAddr(s.opts.EndpointIP); err != nil {
			return fmt.Errorf("dns: endpoint address %q: %w", s.opts.EndpointIP, errdefs.ErrInvalid)
		}
	}
	var fixed []string
	if len(s.opts.Upstreams) > 0 {
		if fixed, err = upstreamAddrs(s.opts.Upstreams, nil); err != nil {
			return err
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("dns: caches did not sync")
	}
	svcs, err := s.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	for _, svc := range svcs {
		s.syncService(svc.Namespace + "/" + svc.Name)
	}

	pc, ln, err := listenBoth(ctx, listen)
	if err != nil {
		return err
	}
	s.addr = netip.AddrPortFrom(listen.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))
	if fixed != nil {
		s.fwd.setUpstreams(dropSelf(fixed, s.addr))
	} else {
		s.refreshUpstreams()
	}

	var wg sync.WaitGroup
	servers := []*dns.Server{
		{PacketConn: pc, UDPSize: 4096, Handler: s.serveFunc(ctx, true)},
		{Listener: ln, Handler: s.serveFunc(ctx, false)},
	}
	for i, srv := range servers {
		started, failed := make(chan struct{}), make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() {
			err := srv.ActivateAndServe()
			failed <- err
			if err != nil && ctx.Err() == nil {
				s.log.Error("serving stopped", "err", err)
			}
		})
		select {
		case <-started:
		case err := <-failed:
			for _, up := range servers[:i] {
				_ = up.Shutdown()
			}
			ln.Close()
			pc.Close()
			wg.Wait()
			return fmt.Errorf("dns: serve: %w", err)
		}
	}
	s.log.Info("serving", "addr", s.addr.String(), "zone", s.opts.Zone, "upstreams", s.fwd.list())
	close(s.ready)
	if s.opts.NodeName != "" {
		q.Add(selfKey)
	}

	wg.Go(func() {
		for s.next(ctx) {
		}
	})
	if fixed == nil {
		wg.Go(func() {
			t := time.NewTicker(upstreamRefresh)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.refreshUpstreams()
				}
			}
		})
	}

	<-ctx.Done()
	q.ShutDown()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = srv.ShutdownContext(sctx)
		cancel()
	}
	wg.Wait()
	if s.opts.NodeName != "" {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.deleteSlice(dctx); err != nil {
			s.log.Warn("could not delete the node's kube-dns EndpointSlice", "err", err)
		}
	}
	return nil
}

func (s *Server) serveFunc(ctx context.Context, udp bool) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		_ = w.WriteMsg(s.h.reply(ctx, req, udp))
	}
}

func (s *Server) next(ctx context.Context) bool {
	q := s.queue()
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	if key != selfKey {
		s.syncService(key)
		q.Forget(key)
		return true
	}
	if err := s.syncSlice(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("will retry the node's kube-dns EndpointSlice", "err", err)
		}
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

// syncService replaces the records of the Service key ("ns/name") with
// what the caches hold now.
func (s *Server) syncService(key string) {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := s.services.Services(ns).Get(name)
	if err != nil {
		s.ix.set(key, nil)
		return
	}
	s.ix.set(key, serviceRecords(s.h.zone, svc, s.slicesOf(ns, name)))
}

func (s *Server) slicesOf(ns, name string) []*discoveryv1.EndpointSlice {
	if s.indexed {
		objs, err := s.sliceIndexer.ByIndex(byService, ns+"/"+name)
		if err == nil {
			out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
			for _, o := range objs {
				if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
					out = append(out, sl)
				}
			}
			return out
		}
	}
	out, _ := s.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	return out
}

// refreshUpstreams reads the node's resolver configuration again.
func (s *Server) refreshUpstreams() {
	list, err := hostUpstreams(s.opts.ResolvConf, systemdResolvConf, []netip.AddrPort{s.addr})
	if err != nil {
		if len(s.fwd.list()) == 0 {
			s.log.Warn("no upstream resolvers: names outside the cluster will fail", "err", err)
		}
		return
	}
	if !slices.Equal(list, s.fwd.list()) {
		if len(list) == 0 {
			s.log.Warn("no upstream resolvers: names outside the cluster will fail", "resolvConf", s.opts.ResolvConf)
		} else {
			s.log.Info("upstream resolvers", "upstreams", list)
		}
		s.fwd.setUpstreams(list)
	}
}

// dropSelf drops the server's own address (known once bound) from list.
func dropSelf(list []string, self netip.AddrPort) []string {
	return slices.DeleteFunc(slices.Clone(list), func(u string) bool { return u == self.String() })
}

func (s *Server) logLoop(name string) {
	now := time.Now().Unix()
	if last := s.lastLoopLog.Load(); now-last >= 10 && s.lastLoopLog.CompareAndSwap(last, now) {
		s.log.Warn("forwarding loop: a query this server forwarded came back to it; check the node's resolv.conf", "name", name)
	}
}

// listenAddr parses Options.Listen.
func listenAddr(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dns: listen address %q: %w", s, errdefs.ErrInvalid)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// listenBoth opens the UDP socket and a TCP listener on the same port.
func listenBoth(ctx context.Context, addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: freebind}
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr.String())
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(addr.Addr(), uint16(port)).String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if addr.Port() != 0 || attempt == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", addr, err)
		}
	}
}

// freebind lets the sockets bind an address the node does not have yet
// (the pods bridge may come up after the server).
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
