package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
)

// sync brings one object in line with its owners and its own deletion:
//
//   - deleting with the orphan finalizer: drop the references to it from
//     its dependents, then the finalizer;
//   - deleting with the foregroundDeletion finalizer: have its dependents
//     deleted and drop the finalizer once none that block remain;
//   - otherwise, if some owners are gone or being deleted in the
//     foreground: delete it when no live owner is left, else drop the
//     references to those owners.
func (gc *collector) sync(ctx context.Context, it item) error {
	m, ok := gc.cached(it)
	if !ok {
		return nil // gone; its deletion enqueued its dependents
	}
	if m.DeletionTimestamp != nil {
		switch {
		case slices.Contains(m.Finalizers, metav1.FinalizerOrphanDependents):
			return gc.orphanDependents(ctx, it, m)
		case slices.Contains(m.Finalizers, metav1.FinalizerDeleteDependents):
			return gc.deleteDependents(ctx, it, m)
		}
		return nil
	}
	if len(m.OwnerReferences) == 0 {
		return nil
	}
	return gc.collect(ctx, it, m)
}

// orphanDependents removes owner's references from its dependents, then
// its orphan finalizer, so the server deletes it.
func (gc *collector) orphanDependents(ctx context.Context, owner item, m *metav1.PartialObjectMetadata) error {
	deps, err := gc.dependentsAsOf(ctx, owner, m.ResourceVersion)
	if err != nil {
		return fmt.Errorf("dependents of %s: %w", gc.describe(owner), err)
	}
	for _, d := range deps {
		if _, err := gc.patch(ctx, d.item, d.meta, removeOwnerRefs(owner.uid)); err != nil {
			return err
		}
	}
	done, err := gc.patch(ctx, owner, m, removeFinalizer(metav1.FinalizerOrphanDependents))
	if done {
		gc.log.Info("orphaned dependents", "resource", gc.table.list[owner.res].Plural, "namespace", owner.namespace, "name", owner.name, "dependents", len(deps))
	}
	return err
}

// deleteDependents has owner's dependents collected (their own sync sees
// the owner waiting) and removes the foreground finalizer once no
// dependent blocks the owner's deletion.
func (gc *collector) deleteDependents(ctx context.Context, owner item, m *metav1.PartialObjectMetadata) error {
	blocking := 0
	for _, d := range gc.dependents(owner) {
		if blocks(d.ref) {
			blocking++
		}
		if d.meta.DeletionTimestamp == nil {
			gc.queue.Add(d.item)
		}
	}
	if blocking > 0 {
		return nil // their deletion events enqueue owner again
	}
	// The cache has none; make sure the server has none either.
	deps, err := gc.dependentsAsOf(ctx, owner, m.ResourceVersion)
	if err != nil {
		return fmt.Errorf("dependents of %s: %w", gc.describe(owner), err)
	}
	for _, d := range deps {
		if blocks(d.ref) {
			return fmt.Errorf("%s: %w", gc.describe(owner), errCacheBehind)
		}
	}
	_, err = gc.patch(ctx, owner, m, removeFinalizer(metav1.FinalizerDeleteDependents))
	return err
}

// errCacheBehind asks for a retry once the caches have caught up with
// the server.
var errCacheBehind = errors.New("dependents not in the cache yet")

// owners sorts an object's owner references by the state of the owner.
type owners struct {
	solid    []metav1.OwnerReference // exist and are not being deleted in the foreground
	dangling []metav1.OwnerReference // do not exist
	waiting  []metav1.OwnerReference // being deleted in the foreground
}

// collect deletes it when none of its owners is left, or drops its
// references to owners that are gone or going.
func (gc *collector) collect(ctx context.Context, it item, m *metav1.PartialObjectMetadata) error {
	o, err := gc.classify(ctx, it, m.OwnerReferences)
	if err != nil || len(o.dangling)+len(o.waiting) == 0 {
		return err
	}
	// Act on the object as the server has it, not as the cache last saw it.
	latest, err := gc.resource(it).Get(ctx, it.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", gc.describe(it), err)
	}
	if latest.UID != it.uid || latest.DeletionTimestamp != nil {
		return nil
	}
	if o, err = gc.classify(ctx, it, latest.OwnerReferences); err != nil {
		return err
	}
	switch {
	case len(o.dangling)+len(o.waiting) == 0:
		return nil
	case len(o.solid) > 0:
		var uids []types.UID
		for _, ref := range slices.Concat(o.dangling, o.waiting) {
			uids = append(uids, ref.UID)
		}
		done, err := gc.patch(ctx, it, latest, removeOwnerRefs(uids...))
		if done {
			gc.log.Info("removed owner references", "resource", gc.table.list[it.res].Plural, "namespace", it.namespace, "name", it.name, "owners", uids)
		}
		return err
	case len(o.waiting) > 0 && (slices.ContainsFunc(o.waiting, blocks) || len(gc.dependents(it)) > 0):
		// An owner waits for it: delete it in the foreground too, so the
		// owner waits for the whole subtree. If a dependent also waits for
		// its own dependents there may be a cycle; stop blocking the
		// waiting owners to break it.
		for _, d := range gc.dependents(it) {
			if d.meta.DeletionTimestamp != nil && slices.Contains(d.meta.Finalizers, metav1.FinalizerDeleteDependents) {
				var uids []types.UID
				for _, ref := range o.waiting {
					uids = append(uids, ref.UID)
				}
				if _, err := gc.patch(ctx, it, latest, unblockOwnerRefs(uids...)); err != nil {
					return err
				}
				break
			}
		}
		return gc.delete(ctx, it, metav1.DeletePropagationForeground)
	default:
		// No owner is left: keep whatever cascade the object already asks
		// for, else cascade in the background.
		policy := metav1.DeletePropagationBackground
		switch {
		case slices.Contains(latest.Finalizers, metav1.FinalizerOrphanDependents):
			policy = metav1.DeletePropagationOrphan
		case slices.Contains(latest.Finalizers, metav1.FinalizerDeleteDependents):
			policy = metav1.DeletePropagationForeground
		}
		return gc.delete(ctx, it, policy)
	}
}

// classify looks up the owners of the dependent it. The cache answers
// for owners it has; an owner missing from it is confirmed with the server
// before being called gone, as the owner's cache may lag the dependent's.
func (gc *collector) classify(ctx context.Context, it item, refs []metav1.OwnerReference) (owners, error) {
	var o owners
	for _, ref := range refs {
		owner, ok := gc.ownerItem(it.res, it.namespace, ref)
		switch {
		case !ok:
			if _, known := gc.table.forRef(ref); !known {
				// A kind Skiff does not serve: nothing to look up, and
				// nothing to be sure of, so keep the object.
				o.solid = append(o.solid, ref)
				continue
			}
			o.dangling = append(o.dangling, ref) // namespaced owner, cluster-scoped dependent
			continue
		case gc.absent.has(ref.UID):
			o.dangling = append(o.dangling, ref)
			continue
		}
		m, ok := gc.cached(owner)
		if !ok {
			live, err := gc.resource(owner).Get(ctx, owner.name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err) || (err == nil && live.UID != ref.UID):
				gc.absent.add(ref.UID)
				o.dangling = append(o.dangling, ref)
				continue
			case err != nil:
				return owners{}, fmt.Errorf("get owner %s of %s: %w", gc.describe(owner), gc.describe(it), err)
			}
			m = live
		}
		if m.DeletionTimestamp != nil && slices.Contains(m.Finalizers, metav1.FinalizerDeleteDependents) {
			o.waiting = append(o.waiting, ref)
		} else {
			o.solid = append(o.solid, ref)
		}
	}
	return o, nil
}

// delete deletes it with the given cascade, provided it is still the same
// object.
func (gc *collector) delete(ctx context.Context, it item, policy metav1.DeletionPropagation) error {
	uid := it.uid
	err := gc.resource(it).Delete(ctx, it.name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or a namesake: nothing of ours left to delete
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", gc.describe(it), err)
	}
	gc.log.Info("deleted", "resource", gc.table.list[it.res].Plural, "namespace", it.namespace, "name", it.name, "propagation", policy)
	return nil
}

// patch applies what build computes for m and reports whether it changed
// anything. If m was stale and the patch's tests fail, it computes the
// patch again from the server's copy once.
func (gc *collector) patch(ctx context.Context, it item, m *metav1.PartialObjectMetadata, build patchBuilder) (bool, error) {
	for attempt := 0; ; attempt++ {
		ops := build(m)
		if ops == nil {
			return false, nil
		}
		data, err := json.Marshal(ops)
		if err != nil {
			return false, fmt.Errorf("patch %s: %w", gc.describe(it), err)
		}
		_, err = gc.resource(it).Patch(ctx, it.name, types.JSONPatchType, data, metav1.PatchOptions{})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case apierrors.IsInvalid(err) && attempt == 0:
			latest, gerr := gc.resource(it).Get(ctx, it.name, metav1.GetOptions{})
			if apierrors.IsNotFound(gerr) {
				return false, nil
			}
			if gerr != nil {
				return false, fmt.Errorf("get %s: %w", gc.describe(it), gerr)
			}
			if latest.UID != it.uid {
				return false, nil
			}
			m = latest
		default:
			return false, fmt.Errorf("patch %s: %w", gc.describe(it), err)
		}
	}
}

func (gc *collector) resource(it item) metadata.ResourceInterface {
	r := gc.client.Resource(gc.table.list[it.res].GVR())
	if it.namespace == "" {
		return r
	}
	return r.Namespace(it.namespace)
}

func (gc *collector) describe(it item) string {
	r := gc.table.list[it.res]
	if it.namespace == "" {
		return fmt.Sprintf("%s %s", r.Plural, it.name)
	}
	return fmt.Sprintf("%s %s/%s", r.Plural, it.namespace, it.name)
}
