package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/workloop"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// Options configure the controller.
type Options struct {
	// HTTPAddr and HTTPSAddr are the listen addresses (default ":80"
	// and ":443").
	HTTPAddr, HTTPSAddr string
	// ClassName and ControllerName identify the Ingresses served
	// (default "skiff" and "skiff.dev/ingress").
	ClassName, ControllerName string
	// StatusAddresses are written to status.loadBalancer.ingress (IPs,
	// or host names). Empty means the addresses of the cluster's ready
	// Nodes (ExternalIP, else InternalIP) — the same on every node, so
	// that nodes do not fight over it.
	StatusAddresses []string
	// NodeName names this node in events.
	NodeName string
	// DefaultCertificate answers TLS clients whose name has no
	// certificate; nil generates a self-signed one at Run.
	DefaultCertificate *proxy.Certificate
	// Recorder records events; nil makes one that writes to the API.
	Recorder record.EventRecorder
	// AccessLog, when set, receives a line per request (Envoy's format).
	AccessLog io.Writer
	// Gateway, when set, adds Istio Gateways to the proxy's
	// configuration.
	Gateway GatewaySource
}

// syncKey is the one key of the work queue: every change leads to one
// translation of everything.
const syncKey = "ingresses"

// Controller serves Ingresses on this node.
type Controller struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   Options
	proxy  *proxy.Proxy
	loop   *workloop.Loop

	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	objects   listerObjects
	nodes     corelisters.NodeLister // nil with StatusAddresses

	mu          sync.Mutex
	refServices map[string]bool
	refSecrets  map[string]bool

	// Owned by the worker (one) and Run.
	recorder    record.EventRecorder
	defaultCert proxy.Certificate
	version     string
	reported    map[string]bool
	announced   map[types.UID]int64
}

// New returns a controller that watches through factory. It does no
// I/O; Run serves.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Controller {
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = ":80"
	}
	if opts.HTTPSAddr == "" {
		opts.HTTPSAddr = ":443"
	}
	if opts.ClassName == "" {
		opts.ClassName = DefaultClassName
	}
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	log = log.With("component", "ingress")
	popts := proxy.Options{Logger: log}
	if opts.AccessLog != nil {
		popts.AccessLog = proxy.NewTextAccessLog(opts.AccessLog)
	}
	c := &Controller{
		client:    client,
		log:       log,
		opts:      opts,
		proxy:     proxy.New(popts),
		recorder:  opts.Recorder,
		reported:  map[string]bool{},
		announced: map[types.UID]int64{},
	}
	c.loop = workloop.New("ingress", log, func(ctx context.Context, _ string) error { return c.sync(ctx) })
	enqueue := func(any) { c.loop.Add(syncKey) }
	all := cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}

	ingInf := factory.Networking().V1().Ingresses()
	classInf := factory.Networking().V1().IngressClasses()
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	secretInf := factory.Core().V1().Secrets()
	_, _ = ingInf.Informer().AddEventHandler(all)
	_, _ = classInf.Informer().AddEventHandler(all)
	_, _ = svcInf.Informer().AddEventHandler(c.ifReferenced(func(obj any) string {
		s, _ := obj.(*corev1.Service)
		if s == nil {
			return ""
		}
		return s.Namespace + "/" + s.Name
	}, &c.refServices))
	_, _ = sliceInf.Informer().AddEventHandler(c.ifReferenced(func(obj any) string {
		s, _ := obj.(*discoveryv1.EndpointSlice)
		if s == nil {
			return ""
		}
		return s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
	}, &c.refServices))
	_, _ = secretInf.Informer().AddEventHandler(c.ifReferenced(func(obj any) string {
		s, _ := obj.(*corev1.Secret)
		if s == nil {
			return ""
		}
		return s.Namespace + "/" + s.Name
	}, &c.refSecrets))
	c.ingresses = ingInf.Lister()
	c.classes = classInf.Lister()
	c.objects = listerObjects{services: svcInf.Lister(), slices: sliceInf.Lister(), secrets: secretInf.Lister()}
	c.loop.WaitFor(ingInf.Informer().HasSynced, classInf.Informer().HasSynced, svcInf.Informer().HasSynced,
		sliceInf.Informer().HasSynced, secretInf.Informer().HasSynced)
	if len(opts.StatusAddresses) == 0 {
		nodeInf := factory.Core().V1().Nodes()
		_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			DeleteFunc: enqueue,
			UpdateFunc: func(old, cur any) {
				o, _ := old.(*corev1.Node)
				n, _ := cur.(*corev1.Node)
				if o == nil || n == nil || nodeReady(o) != nodeReady(n) || !sameStrings(nodeAddresses(o), nodeAddresses(n)) {
					enqueue(cur)
				}
			},
		})
		c.nodes = nodeInf.Lister()
		c.loop.WaitFor(nodeInf.Informer().HasSynced)
	}
	return c
}

// ifReferenced enqueues a change to an object the last translation read.
func (c *Controller) ifReferenced(keyOf func(any) string, set *map[string]bool) cache.ResourceEventHandler {
	f := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		k := keyOf(obj)
		c.mu.Lock()
		ref := (*set)[k]
		c.mu.Unlock()
		if ref {
			c.loop.Add(syncKey)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, o any) { f(o) }, DeleteFunc: f}
}

// Addr is the bound address of ListenerHTTP or ListenerHTTPS once
// served.
func (c *Controller) Addr(listener string) net.Addr { return c.proxy.Addr(listener) }

// Run serves until ctx ends: it waits for the caches, keeps the proxy's
// configuration and the Ingresses' status up to date, and on return has
// closed its listeners.
func (c *Controller) Run(ctx context.Context) error {
	if c.opts.DefaultCertificate != nil {
		c.defaultCert = *c.opts.DefaultCertificate
	} else {
		cert, err := defaultCertificate(time.Now())
		if err != nil {
			return err
		}
		c.defaultCert = cert
	}
	if c.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "skiff-ingress", Host: c.opts.NodeName})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- c.proxy.Run(ctx) }()
	go c.watchGateway(ctx.Done())
	err := c.loop.Run(ctx, 1)
	cancel()
	return errors.Join(err, <-proxyDone)
}

// sync translates every Ingress served into the proxy's configuration,
// reports problems and writes status.
func (c *Controller) sync(ctx context.Context) error {
	classList, err := c.classes.List(labels.Everything())
	if err != nil {
		return err
	}
	classes := classesFor(classList, c.opts.ClassName, c.opts.ControllerName)
	all, err := c.ingresses.List(labels.Everything())
	if err != nil {
		return err
	}
	var ours []*networkingv1.Ingress
	for _, ing := range all {
		if ing.DeletionTimestamp == nil && classes.serves(ing) {
			ours = append(ours, ing)
		}
	}
	res := Translate(ours, c.objects, TranslateOptions{HTTPAddr: c.opts.HTTPAddr, HTTPSAddr: c.opts.HTTPSAddr,
		DefaultCertificate: c.defaultCert})
	c.mu.Lock()
	c.refServices, c.refSecrets = res.Services, res.Secrets
	c.mu.Unlock()

	cfg := c.mergeGateway(res.Config)
	version, err := contentVersion(cfg)
	if err != nil {
		return err
	}
	if version != c.version {
		cfg.Version = version
		if err := c.update(cfg, res.Config); err != nil {
			c.log.Error("proxy configuration rejected", "version", version, "err", err)
			return err
		}
		c.version = version
		c.log.Info("proxy configuration updated", "version", version, "ingresses", len(ours),
			"clusters", len(cfg.Clusters))
	}
	c.report(ours, res.Problems)
	return c.writeStatus(ctx, ours)
}

// contentVersion names a configuration by its content, so that an
// unchanged translation is not applied again.
func contentVersion(cfg *proxy.Config) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("hashing configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6]), nil
}

// report records a Warning event for each new problem, and a Normal
// "Sync" event when an Ingress (or a new generation of it) is taken up.
func (c *Controller) report(ours []*networkingv1.Ingress, problems []Problem) {
	byKey := make(map[types.NamespacedName]*networkingv1.Ingress, len(ours))
	seen := make(map[types.UID]int64, len(ours))
	for _, ing := range ours {
		byKey[key(ing)] = ing
		seen[ing.UID] = ing.Generation
		if g, ok := c.announced[ing.UID]; !ok || g != ing.Generation {
			c.recorder.Event(ing, corev1.EventTypeNormal, "Sync", "Scheduled for sync")
		}
	}
	c.announced = seen
	current := make(map[string]bool, len(problems))
	for _, p := range problems {
		k := p.Namespace + "/" + p.Ingress + "|" + p.Reason + "|" + p.Message
		current[k] = true
		if ing := byKey[types.NamespacedName{Namespace: p.Namespace, Name: p.Ingress}]; ing != nil && !c.reported[k] {
			c.recorder.Event(ing, corev1.EventTypeWarning, p.Reason, p.Message)
		}
	}
	c.reported = current
}

// listerObjects reads a translation's objects from the informers'
// caches.
type listerObjects struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	secrets  corelisters.SecretLister
}

func (o listerObjects) Service(ns, name string) (*corev1.Service, error) {
	return o.services.Services(ns).Get(name)
}

func (o listerObjects) EndpointSlices(ns, service string) ([]*discoveryv1.EndpointSlice, error) {
	return o.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
}

func (o listerObjects) Secret(ns, name string) (*corev1.Secret, error) {
	return o.secrets.Secrets(ns).Get(name)
}
