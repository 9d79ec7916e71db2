// Package namespace empties namespaces that are being deleted, the way
// Kubernetes' namespace controller does: for a Namespace with a
// deletionTimestamp it deletes every namespaced object in it, waits until
// none is left (finalizers may hold some), reports progress in the
// Namespace's status conditions, and then removes the "kubernetes" spec
// finalizer through the finalize subresource so the API server deletes
// the Namespace.
//
// Only the daemon should import this package.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"skiff.dev/skiff/internal/resources"
)

// Retry delays: content often needs a moment (finalizers, grace periods),
// so retries start quickly and stay frequent.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 5 * time.Second
)

// Controller is the namespace controller.
type Controller struct {
	client  kubernetes.Interface
	meta    metadata.Interface
	log     *slog.Logger
	content []resources.Resource
}

// New returns a controller that reads Namespaces through client and
// deletes their content through meta. It does no I/O.
func New(client kubernetes.Interface, meta metadata.Interface, log *slog.Logger) *Controller {
	return &Controller{
		client:  client,
		meta:    meta,
		log:     log.With("component", "namespace-controller"),
		content: namespacedResources(resources.All),
	}
}

// errContentRemaining asks for another look later; it is not a failure.
var errContentRemaining = errors.New("content remaining")

// Run empties deleted namespaces with the given number of workers until
// ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](minRetry, maxRetry),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"})
	defer queue.ShutDown()
	factory := informers.NewSharedInformerFactory(c.client, 0)
	defer factory.Shutdown()
	inf := factory.Core().V1().Namespaces()
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			queue.Add(ns.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("namespace controller: watch namespaces: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("namespace controller: namespace cache did not sync")
	}
	c.log.Info("started", "workers", workers)
	lister := inf.Lister()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx, queue, lister) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], lister corelisters.NamespaceLister) bool {
	name, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(name)
	err := c.sync(ctx, lister, name)
	switch {
	case err == nil:
		queue.Forget(name)
	case errors.Is(err, errContentRemaining):
		c.log.Debug("waiting for content", "namespace", name)
		queue.AddRateLimited(name)
	default:
		if ctx.Err() == nil {
			c.log.Warn("will retry", "namespace", name, "err", err)
		}
		queue.AddRateLimited(name)
	}
	return true
}

// sync empties one namespace if it is being deleted, and finalizes it
// once it is empty.
func (c *Controller) sync(ctx context.Context, lister corelisters.NamespaceLister, name string) error {
	ns, err := lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	left, delErr := c.deleteContent(ctx, name)
	if err := c.updateConditions(ctx, ns, conditions(left, delErr)); err != nil {
		return errors.Join(delErr, err)
	}
	if delErr != nil {
		return delErr
	}
	if !left.empty() {
		return errContentRemaining
	}
	return c.finalize(ctx, name)
}

// finalize removes the "kubernetes" finalizer from the namespace as the
// server has it now; the server then deletes the namespace.
func (c *Controller) finalize(ctx context.Context, name string) error {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	c.log.Info("finalized", "namespace", name)
	return nil
}

// updateConditions writes the deletion conditions to the namespace's
// status when they differ from what it has.
func (c *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, want []corev1.NamespaceCondition) error {
	next := ns.DeepCopy()
	if !setConditions(&next.Status, want, metav1.Now()) {
		return nil
	}
	if _, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update status of namespace %s: %w", ns.Name, err)
	}
	return nil
}
