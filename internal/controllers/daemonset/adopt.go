package daemonset

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// claimPods returns the pods set controls, as upstream's ControllerRefManager
// does: pods it owns that still match its selector, plus orphans that
// match, which it adopts. Pods it owns that no longer match are released.
// (The same as the StatefulSet controller's; a candidate for
// internal/controllers/podcontrol.)
func (c *Controller) claimPods(ctx context.Context, set *appsv1.DaemonSet, selector labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var owned []*corev1.Pod
	recheckedOwner := false
	for _, pod := range all {
		ref := metav1.GetControllerOf(pod)
		matches := selector.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID != set.UID:
		case ref != nil && matches:
			owned = append(owned, pod)
		case ref != nil:
			if pod.DeletionTimestamp == nil {
				if err := c.patchPodOwner(ctx, pod, map[string]any{"$patch": "delete", "uid": set.UID}); err != nil {
					return nil, err
				}
			}
		case matches && pod.DeletionTimestamp == nil && set.DeletionTimestamp == nil:
			// Adopt only for the set as the server has it now, not a
			// deleted one the cache still shows.
			if !recheckedOwner {
				fresh, err := c.client.AppsV1().DaemonSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("recheck daemonset before adopting: %w", err)
				}
				if fresh.UID != set.UID || fresh.DeletionTimestamp != nil {
					return owned, nil
				}
				recheckedOwner = true
			}
			ref := metav1.OwnerReference{APIVersion: controllerKind.GroupVersion().String(), Kind: controllerKind.Kind,
				Name: set.Name, UID: set.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
			if err := c.patchPodOwner(ctx, pod, ref); err != nil {
				return nil, err
			}
			owned = append(owned, pod)
		}
	}
	return owned, nil
}

// patchPodOwner adds or removes (a {"$patch": "delete"} element) one owner
// reference of pod by strategic merge, failing on a namesake.
func (c *Controller) patchPodOwner(ctx context.Context, pod *corev1.Pod, ref any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": pod.UID, "ownerReferences": []any{ref},
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update owners of pod %s: %w", pod.Name, err)
	}
	return nil
}
