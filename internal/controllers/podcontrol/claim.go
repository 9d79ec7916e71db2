package podcontrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// RefManager claims objects for one controller object (the owner), as
// upstream's ControllerRefManager does. Build one per sync.
type RefManager struct {
	// Owner is the controller object; Kind its group, version and kind.
	Owner metav1.Object
	Kind  schema.GroupVersionKind
	// Selector picks the objects the owner should control.
	Selector labels.Selector
	// CanAdopt is asked once, before the first adoption. It should read
	// the owner afresh from the API server and fail when the owner is
	// being deleted or has been replaced by a namesake (see
	// RecheckDeletion), so that a stale cache cannot make a dying owner
	// adopt. Nil allows adoption.
	CanAdopt func(ctx context.Context) error

	once     sync.Once
	adoptErr error
}

// PatchFunc applies a strategic merge patch to the named object of the
// owner's namespace.
type PatchFunc func(ctx context.Context, name string, patch []byte) error

// Claim returns the objects among objs that m's owner controls once it
// has adopted the orphans its selector matches and released those it
// controls that no longer match. Objects another controller owns are left
// alone, and so is everything while the owner is being deleted (the
// garbage collector then decides). Objects that vanish meanwhile are
// skipped. Failures are joined into the error; the claimed objects are
// returned regardless.
func Claim[T metav1.Object](ctx context.Context, m *RefManager, objs []T, patch PatchFunc) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		ok, err := m.claim(ctx, obj, patch)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			claimed = append(claimed, obj)
		}
	}
	return claimed, errors.Join(errs...)
}

// ClaimPods is Claim for pods, patching them through client.
func (m *RefManager) ClaimPods(ctx context.Context, client kubernetes.Interface, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	api := client.CoreV1().Pods(m.Owner.GetNamespace())
	return Claim(ctx, m, pods, func(ctx context.Context, name string, patch []byte) error {
		_, err := api.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

func (m *RefManager) claim(ctx context.Context, obj metav1.Object, patch PatchFunc) (bool, error) {
	owned := m.Owner.GetDeletionTimestamp() == nil
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != m.Owner.GetUID() {
			return false, nil
		}
		if m.Selector.Matches(labels.Set(obj.GetLabels())) {
			return true, nil
		}
		if !owned {
			return false, nil
		}
		return false, m.release(ctx, obj, patch)
	}
	if !owned || obj.GetDeletionTimestamp() != nil || obj.GetNamespace() != m.Owner.GetNamespace() ||
		!m.Selector.Matches(labels.Set(obj.GetLabels())) {
		return false, nil
	}
	err := m.adopt(ctx, obj, patch)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// adopt makes the owner obj's controller.
func (m *RefManager) adopt(ctx context.Context, obj metav1.Object, patch PatchFunc) error {
	m.once.Do(func() {
		if m.CanAdopt != nil {
			m.adoptErr = m.CanAdopt(ctx)
		}
	})
	if m.adoptErr != nil {
		return fmt.Errorf("adopt %s: %w", obj.GetName(), m.adoptErr)
	}
	ref := metav1.NewControllerRef(m.Owner, m.Kind)
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []*metav1.OwnerReference{ref},
		"uid":             obj.GetUID(),
	}})
	if err != nil {
		return err
	}
	if err := patch(ctx, obj.GetName(), body); err != nil {
		return fmt.Errorf("adopt %s: %w", obj.GetName(), err)
	}
	return nil
}

// release removes the owner's reference from obj.
func (m *RefManager) release(ctx context.Context, obj metav1.Object, patch PatchFunc) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": m.Owner.GetUID()}},
		"uid":             obj.GetUID(),
	}})
	if err != nil {
		return err
	}
	err = patch(ctx, obj.GetName(), body)
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or changed so that the reference is no longer there.
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", obj.GetName(), err)
	}
	return nil
}

// RecheckDeletion returns a RefManager.CanAdopt check built on get, which
// should read the owner from the API server (not a cache): adoption is
// refused when the owner is gone, replaced (another UID) or being deleted.
func RecheckDeletion(owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) func(context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return fmt.Errorf("recheck owner %s: %w", owner.GetName(), err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("owner %s/%s was replaced (uid %s, want %s)", owner.GetNamespace(), owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("owner %s/%s is being deleted", owner.GetNamespace(), owner.GetName())
		}
		return nil
	}
}
