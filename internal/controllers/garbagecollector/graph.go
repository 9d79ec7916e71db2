package garbagecollector

// The cache side of the collector: the owner→dependents graph is the
// informers' caches, indexed by owner UID, plus what the handlers observed.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// ownerIndex indexes objects by the UIDs of their owners.
const ownerIndex = "ownerUID"

func (gc *collector) itemOf(res int, m *metav1.PartialObjectMetadata) item {
	return item{res: res, namespace: m.Namespace, name: m.Name, uid: m.UID}
}

// ownerItem is the owner ref names, seen from a dependent of resource res
// in namespace ns.
func (gc *collector) ownerItem(res int, ns string, ref metav1.OwnerReference) (item, bool) {
	ores, ok := gc.table.forRef(ref)
	if !ok {
		return item{}, false
	}
	ons, ok := gc.table.ownerNamespace(ores, ns)
	if !ok {
		return item{}, false
	}
	return item{res: ores, namespace: ons, name: ref.Name, uid: ref.UID}, true
}

// dependent is an object that names an owner, with the reference.
type dependent struct {
	item
	meta *metav1.PartialObjectMetadata
	ref  metav1.OwnerReference
}

// dependents lists the cached objects that name owner as an owner.
func (gc *collector) dependents(owner item) []dependent {
	var out []dependent
	for res, inf := range gc.informers {
		objs, err := inf.GetIndexer().ByIndex(ownerIndex, string(owner.uid))
		if err != nil {
			continue // only fails for an unknown index name
		}
		for _, obj := range objs {
			if m := objectMeta(obj); m != nil {
				out = gc.appendDependent(out, owner, res, m)
			}
		}
	}
	return out
}

// dependentsAsOf lists owner's dependents as the server had them at
// resourceVersion rv (or later): from the cache for resources whose events
// up to rv the collector has handled, from the server for the others.
// Before a finalizer comes off an owner this closes the window in which a
// new dependent is on the server but not yet in its cache.
func (gc *collector) dependentsAsOf(ctx context.Context, owner item, rv string) ([]dependent, error) {
	want, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		want = math.MaxUint64 // no revision to compare: ask the server
	}
	var out []dependent
	for res, inf := range gc.informers {
		if gc.seen[res].Load() >= want {
			objs, _ := inf.GetIndexer().ByIndex(ownerIndex, string(owner.uid))
			for _, obj := range objs {
				if m := objectMeta(obj); m != nil {
					out = gc.appendDependent(out, owner, res, m)
				}
			}
			continue
		}
		if gc.table.list[owner.res].Namespaced && !gc.table.list[res].Namespaced {
			continue // a namespaced owner owns nothing cluster-scoped
		}
		list, err := gc.client.Resource(gc.table.list[res].GVR()).Namespace(owner.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gc.table.list[res].Plural, err)
		}
		for i := range list.Items {
			out = gc.appendDependent(out, owner, res, &list.Items[i])
		}
	}
	return out, nil
}

// appendDependent appends m, of resource res, if it names owner as an
// owner. A namespaced owner only owns objects in its own namespace.
func (gc *collector) appendDependent(out []dependent, owner item, res int, m *metav1.PartialObjectMetadata) []dependent {
	if gc.table.list[owner.res].Namespaced && m.Namespace != owner.namespace {
		return out
	}
	for _, ref := range m.OwnerReferences {
		if ref.UID == owner.uid {
			return append(out, dependent{item: gc.itemOf(res, m), meta: m, ref: ref})
		}
	}
	return out
}

// observe records that the handlers of resource res have seen m. Events
// of one resource come in resourceVersion order, and the cache is updated
// before handlers run, so the cache holds every object of res up to the
// highest version observed.
func (gc *collector) observe(res int, m *metav1.PartialObjectMetadata) {
	rv, err := strconv.ParseUint(m.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := gc.seen[res].Load()
		if rv <= cur || gc.seen[res].CompareAndSwap(cur, rv) {
			return
		}
	}
}

// cached returns the object it names from the cache, if it is there with
// the same UID.
func (gc *collector) cached(it item) (*metav1.PartialObjectMetadata, bool) {
	key := it.name
	if it.namespace != "" {
		key = it.namespace + "/" + it.name
	}
	obj, ok, err := gc.informers[it.res].GetIndexer().GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	m := objectMeta(obj)
	if m == nil || m.UID != it.uid {
		return nil, false
	}
	return m, true
}

func indexByOwner(obj any) ([]string, error) {
	m := objectMeta(obj)
	if m == nil {
		return nil, errors.New("not object metadata")
	}
	keys := make([]string, 0, len(m.OwnerReferences))
	for _, ref := range m.OwnerReferences {
		keys = append(keys, string(ref.UID))
	}
	return keys, nil
}

// objectMeta unwraps what a metadata informer hands out, including the
// tombstones of deletions it missed.
func objectMeta(obj any) *metav1.PartialObjectMetadata {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, _ := obj.(*metav1.PartialObjectMetadata)
	return m
}

// trim drops the metadata the collector never reads before it is cached;
// annotations in particular can be large (last-applied-configuration).
func trim(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.Annotations, m.Labels, m.ManagedFields = nil, nil, nil
	}
	return obj, nil
}

// absentOwners remembers UIDs the server said are gone. A UID is never
// reused, so an entry never goes stale; the set is only bounded.
type absentOwners struct {
	mu   sync.Mutex
	uids map[types.UID]struct{}
}

const maxAbsentOwners = 10000

func (a *absentOwners) has(uid types.UID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.uids[uid]
	return ok
}

func (a *absentOwners) add(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.uids == nil || len(a.uids) >= maxAbsentOwners {
		a.uids = map[types.UID]struct{}{}
	}
	a.uids[uid] = struct{}{}
}
