package csrsigner

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/controllers/workloop"
	"skiff.dev/skiff/internal/mesh/ca"
)

// RootPublisher keeps the ConfigMap istio-ca-root-cert (key
// root-cert.pem: the trusted mesh roots) in every active namespace, as
// istiod's namespace controller does. Sidecars' identities carry these
// roots; a root rotation is a change of this bundle.
type RootPublisher struct {
	client     kubernetes.Interface
	log        *slog.Logger
	roots      string
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	loop       *workloop.Loop
}

// NewRootPublisher registers its handlers on factory. It does no I/O.
func NewRootPublisher(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, rootsPEM []byte) *RootPublisher {
	nsInf := factory.Core().V1().Namespaces()
	cmInf := factory.Core().V1().ConfigMaps()
	p := &RootPublisher{
		client:     client,
		log:        log.With("component", "mesh-root-publisher"),
		roots:      string(rootsPEM),
		namespaces: nsInf.Lister(),
		configMaps: cmInf.Lister(),
	}
	p.loop = workloop.New("mesh-root-publisher", p.log, p.sync)
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.enqueue(obj, false) },
		UpdateFunc: func(_, cur any) { p.enqueue(cur, false) },
	})
	_, _ = cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, cur any) { p.enqueue(cur, true) },
		DeleteFunc: func(obj any) { p.enqueue(obj, true) },
	})
	p.loop.WaitFor(nsInf.Informer().HasSynced, cmInf.Informer().HasSynced)
	return p
}

func (p *RootPublisher) enqueue(obj any, configMap bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		p.loop.Add(o.Name)
	case *corev1.ConfigMap:
		if configMap && o.Name == ca.RootsConfigMap {
			p.loop.Add(o.Namespace)
		}
	}
}

// Run waits for the caches and works until ctx ends.
func (p *RootPublisher) Run(ctx context.Context, workers int) error {
	return p.loop.Run(ctx, workers)
}

func (p *RootPublisher) sync(ctx context.Context, ns string) error {
	n, err := p.namespaces.Get(ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if n.Status.Phase != corev1.NamespaceActive || n.DeletionTimestamp != nil {
		return nil
	}
	cms := p.client.CoreV1().ConfigMaps(ns)
	cm, err := p.configMaps.ConfigMaps(ns).Get(ca.RootsConfigMap)
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ca.RootsConfigMap, Namespace: ns,
				Labels: map[string]string{"istio.io/config": "true"}},
			Data: map[string]string{ca.RootsKey: p.roots},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) { // raced, or namespace terminating
			return nil
		}
		return err
	case err != nil:
		return err
	case cm.Data[ca.RootsKey] == p.roots:
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[ca.RootsKey] = p.roots
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s/%s: %w", ns, ca.RootsConfigMap, err)
	}
	return nil
}
