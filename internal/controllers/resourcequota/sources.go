package resourcequota

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/controllers/workloop"
	"skiff.dev/skiff/internal/resources"
)

// genericSource is the informer behind count/<resource>.<group> for a
// resource without a fixed lister, created when a quota first names it.
type genericSource struct {
	inf informers.GenericInformer // nil: the resource is not served
	reg cache.ResourceEventHandlerRegistration
}

// lister returns how to list gr's objects: a fixed lister, or an
// informer started on demand (the sync is retried shortly until its cache
// has filled), or nil when no served resource is gr (nothing to count).
func (c *Controller) lister(ctx context.Context, gr schema.GroupResource) (lister, error) {
	if l, ok := c.listers[gr]; ok {
		return l, nil
	}
	c.mu.Lock()
	src, ok := c.generic[gr]
	if !ok {
		src = c.newSource(gr)
		c.generic[gr] = src
	}
	c.mu.Unlock()
	if src.inf == nil {
		return nil, nil
	}
	if !ok {
		c.factory.Start(ctx.Done()) // starts only the informers not yet running
	}
	if !src.reg.HasSynced() {
		return nil, workloop.RetryAfter(100*time.Millisecond, fmt.Errorf("waiting for the %s cache", gr))
	}
	l := src.inf.Lister()
	return func(ns string) ([]runtime.Object, error) { return l.ByNamespace(ns).List(labels.Everything()) }, nil
}

// newSource registers an informer for gr's served version on the factory
// and recounts quotas when its objects are deleted. Called with c.mu held.
func (c *Controller) newSource(gr schema.GroupResource) *genericSource {
	gvr, ok := servedVersion(gr)
	if !ok {
		return &genericSource{}
	}
	inf, err := c.factory.ForResource(gvr)
	if err != nil {
		c.log.Debug("no informer for resource; counting none", "resource", gr, "err", err)
		return &genericSource{}
	}
	reg, err := inf.Informer().AddEventHandler(c.replenisher(gr, nil))
	if err != nil {
		c.log.Debug("cannot watch resource; counting none", "resource", gr, "err", err)
		return &genericSource{}
	}
	return &genericSource{inf: inf, reg: reg}
}

// servedVersion finds the namespaced, served version of gr that is also
// its storage version.
func servedVersion(gr schema.GroupResource) (schema.GroupVersionResource, bool) {
	for _, r := range resources.All {
		if r.Group == gr.Group && r.Plural == gr.Resource && r.Namespaced && r.StorageGVK() == r.GVK() {
			return r.GVR(), true
		}
	}
	return schema.GroupVersionResource{}, false
}
