package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// retention is the set's persistentVolumeClaimRetentionPolicy with
// upstream's defaults (Retain, Retain).
func retention(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	p := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if rp := set.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		if rp.WhenDeleted != "" {
			p.WhenDeleted = rp.WhenDeleted
		}
		if rp.WhenScaled != "" {
			p.WhenScaled = rp.WhenScaled
		}
	}
	return p
}

// newClaim is the claim from template tmpl for the pod with ordinal ord.
// With whenDeleted: Delete the set owns it, so deleting the set deletes it.
func newClaim(set *appsv1.StatefulSet, tmpl *corev1.PersistentVolumeClaim, ord int) *corev1.PersistentVolumeClaim {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        claimName(tmpl.Name, set, ord),
			Namespace:   set.Namespace,
			Labels:      maps.Clone(tmpl.Labels),
			Annotations: maps.Clone(tmpl.Annotations),
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) > 0 {
		if claim.Labels == nil {
			claim.Labels = map[string]string{}
		}
		maps.Copy(claim.Labels, set.Spec.Selector.MatchLabels)
	}
	if retention(set).WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		claim.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: controllerKind.GroupVersion().String(), Kind: controllerKind.Kind, Name: set.Name, UID: set.UID,
		}}
	}
	return claim
}

// ensureClaims makes sure each claim of the pod with ordinal ord exists
// and has the owners of a live member's claim: the set if and only if
// whenDeleted is Delete, and no earlier pod of that ordinal (which would have the garbage
// collector delete it). A claim being deleted is waited for, as upstream
// does.
func (r *reconciler) ensureClaims(ctx context.Context, pod *corev1.Pod, ord int) error {
	for i := range r.set.Spec.VolumeClaimTemplates {
		want := newClaim(r.set, &r.set.Spec.VolumeClaimTemplates[i], ord)
		claims := r.client.CoreV1().PersistentVolumeClaims(want.Namespace)
		got, err := claims.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = claims.Create(ctx, want, metav1.CreateOptions{})
			if err == nil {
				r.recorder.Eventf(r.set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", want.Name, pod.Name, r.set.Name)
				continue
			}
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if apierrors.IsNotFound(err) {
				// Creating needs no existing object: the resource is missing.
				err = fmt.Errorf("the API server does not serve persistentvolumeclaims: %w", err)
			}
		}
		if err != nil {
			r.warn(ctx, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", want.Name, pod.Name, r.set.Name, err)
			return fmt.Errorf("claim %s: %w", want.Name, err)
		}
		if got.DeletionTimestamp != nil {
			return fmt.Errorf("claim %s is being deleted", want.Name)
		}
		var changes []any
		for _, ref := range got.OwnerReferences {
			if ref.Kind == "Pod" && ref.APIVersion == "v1" && ref.UID != pod.UID {
				changes = append(changes, map[string]any{"$patch": "delete", "uid": ref.UID})
			}
		}
		switch owned := ownedBy(got, r.set.UID); {
		case len(want.OwnerReferences) > 0 && !owned:
			changes = append(changes, want.OwnerReferences[0])
		case len(want.OwnerReferences) == 0 && owned:
			changes = append(changes, map[string]any{"$patch": "delete", "uid": r.set.UID})
		}
		if err := patchOwners(ctx, r, got, changes...); err != nil {
			return err
		}
	}
	return nil
}

// retainOnScaleDown hands the claims of a pod being scaled away to the
// pod alone when whenScaled is Delete, so the garbage collector deletes
// them once the pod is gone.
func (r *reconciler) retainOnScaleDown(ctx context.Context, pod *corev1.Pod) error {
	if retention(r.set).WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		return nil
	}
	ord := ordinalOf(r.set, pod)
	for _, tmpl := range r.set.Spec.VolumeClaimTemplates {
		name := claimName(tmpl.Name, r.set, ord)
		claim, err := r.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("claim %s: %w", name, err)
		}
		var changes []any
		if !ownedBy(claim, pod.UID) {
			changes = append(changes, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID})
		}
		if ownedBy(claim, r.set.UID) {
			changes = append(changes, map[string]any{"$patch": "delete", "uid": r.set.UID})
		}
		if err := patchOwners(ctx, r, claim, changes...); err != nil {
			return err
		}
	}
	return nil
}

func ownedBy(claim *corev1.PersistentVolumeClaim, uid types.UID) bool {
	for _, ref := range claim.OwnerReferences {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

// patchOwners adds owner references to claim, or removes them given
// {"$patch": "delete", "uid": ...} elements, by strategic merge; the
// claim's UID in the patch makes it fail on a namesake.
func patchOwners(ctx context.Context, r *reconciler, claim *corev1.PersistentVolumeClaim, changes ...any) error {
	if len(changes) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": claim.UID, "ownerReferences": changes,
	}})
	if err != nil {
		return err
	}
	_, err = r.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Patch(ctx, claim.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update owners of claim %s: %w", claim.Name, err)
	}
	return nil
}
