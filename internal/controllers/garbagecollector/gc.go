// Package garbagecollector deletes objects whose owners are gone, the way
// Kubernetes' garbage collector does: it follows metadata.ownerReferences
// and carries out background, foreground and orphan cascading deletion
// (`kubectl delete --cascade=...`).
//
// The owner→dependents graph is the set of metadata informer caches, one
// per resource in resources.All, indexed by owner UID; nothing else is
// kept, so a restarted collector rebuilds all it needs from the API. Event
// handlers only enqueue objects; workers re-read state and act
// idempotently (see reconcile.go).
//
// Only the daemon should import this package.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"skiff.dev/skiff/internal/resources"
)

// Controller is the garbage collector.
type Controller struct {
	client metadata.Interface
	log    *slog.Logger
	table  table
}

// New returns a collector that works through client. It does no I/O.
func New(client metadata.Interface, log *slog.Logger) *Controller {
	return &Controller{
		client: client,
		log:    log.With("component", "garbage-collector"),
		table:  newTable(resources.All),
	}
}

// item identifies one object: the resource (an index into the table), its
// namespace and name, and its UID to tell it from a later namesake.
type item struct {
	res             int
	namespace, name string
	uid             types.UID
}

// collector is the state of one Run: the caches and the queue.
type collector struct {
	*Controller
	informers []cache.SharedIndexInformer
	// seen is, per resource, the highest resourceVersion its handlers saw.
	seen   []atomic.Uint64
	queue  workqueue.TypedRateLimitingInterface[item]
	absent absentOwners
}

// Run watches every resource and collects garbage with the given number
// of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	gc := &collector{
		Controller: c,
		seen:       make([]atomic.Uint64, len(c.table.list)),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[item](),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: "garbage_collector"}),
	}
	defer gc.queue.ShutDown()
	factory := metadatainformer.NewSharedInformerFactoryWithOptions(c.client, 0, metadatainformer.WithTransform(trim))
	defer factory.Shutdown()
	for i, r := range c.table.list {
		inf := factory.ForResource(r.GVR()).Informer()
		if err := inf.AddIndexers(cache.Indexers{ownerIndex: indexByOwner}); err != nil {
			return fmt.Errorf("garbage collector: index %s: %w", r.GVR(), err)
		}
		if _, err := inf.AddEventHandler(gc.handler(i)); err != nil {
			return fmt.Errorf("garbage collector: watch %s: %w", r.GVR(), err)
		}
		gc.informers = append(gc.informers, inf)
	}
	factory.Start(ctx.Done())
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("garbage collector: cache of %s did not sync", gvr)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	c.log.Info("started", "resources", len(gc.informers), "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for gc.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	gc.queue.ShutDown()
	wg.Wait()
	return nil
}

func (gc *collector) processNext(ctx context.Context) bool {
	it, quit := gc.queue.Get()
	if quit {
		return false
	}
	defer gc.queue.Done(it)
	if err := gc.sync(ctx, it); err != nil {
		if errors.Is(err, errCacheBehind) {
			gc.log.Debug("will retry", "resource", gc.table.list[it.res].Plural,
				"namespace", it.namespace, "name", it.name, "err", err)
		} else if ctx.Err() == nil {
			gc.log.Warn("will retry", "resource", gc.table.list[it.res].Plural,
				"namespace", it.namespace, "name", it.name, "err", err)
		}
		gc.queue.AddRateLimited(it)
		return true
	}
	gc.queue.Forget(it)
	return true
}

// handler enqueues what an event on resource res may have made work for:
// the object itself when its owners or deletion state change, its owners
// (which may be waiting for it), and on deletion its dependents.
func (gc *collector) handler(res int) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m := objectMeta(obj); m != nil {
				gc.observe(res, m)
				gc.queue.Add(gc.itemOf(res, m))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, cur := objectMeta(oldObj), objectMeta(newObj)
			if old == nil || cur == nil {
				return
			}
			gc.observe(res, cur)
			if old.UID != cur.UID { // deleted and recreated between two looks
				gc.deleted(res, old)
				gc.queue.Add(gc.itemOf(res, cur))
				return
			}
			if !metaChanged(old, cur) {
				return
			}
			gc.queue.Add(gc.itemOf(res, cur))
			gc.enqueueOwners(res, old)
			gc.enqueueOwners(res, cur)
		},
		DeleteFunc: func(obj any) {
			if m := objectMeta(obj); m != nil {
				gc.observe(res, m)
				gc.deleted(res, m)
			}
		},
	}
}

func (gc *collector) deleted(res int, m *metav1.PartialObjectMetadata) {
	gc.enqueueOwners(res, m)
	for _, d := range gc.dependents(gc.itemOf(res, m)) {
		gc.queue.Add(d.item)
	}
}

func (gc *collector) enqueueOwners(res int, m *metav1.PartialObjectMetadata) {
	for _, ref := range m.OwnerReferences {
		if it, ok := gc.ownerItem(res, m.Namespace, ref); ok {
			gc.queue.Add(it)
		}
	}
}

// metaChanged reports a change the collector acts on: owner references,
// deletion or finalizers.
func metaChanged(old, cur *metav1.PartialObjectMetadata) bool {
	return !slices.EqualFunc(old.OwnerReferences, cur.OwnerReferences, refEqual) ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		!slices.Equal(old.Finalizers, cur.Finalizers)
}

func refEqual(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.Name == b.Name && a.Kind == b.Kind && a.APIVersion == b.APIVersion &&
		blocks(a) == blocks(b)
}
