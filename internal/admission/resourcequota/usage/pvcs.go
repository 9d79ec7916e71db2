package usage

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The per-storage-class quota names are
// <class>.storageclass.storage.k8s.io/<suffix>.
const (
	storageClassInfix   = ".storageclass.storage.k8s.io/"
	betaStorageClassKey = "volume.beta.kubernetes.io/storage-class"
)

var pvcNames = []corev1.ResourceName{
	"count/persistentvolumeclaims",
	corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceRequestsStorage,
}

type pvcEvaluator struct{}

func (pvcEvaluator) GroupResource() schema.GroupResource {
	return schema.GroupResource{Resource: "persistentvolumeclaims"}
}
func (pvcEvaluator) ChargesUpdates() bool { return true }

func (pvcEvaluator) MatchingResources(names []corev1.ResourceName) []corev1.ResourceName {
	out := Intersect(names, pvcNames)
	for _, n := range names {
		class, what, ok := strings.Cut(string(n), storageClassInfix)
		if ok && class != "" && (what == string(corev1.ResourceRequestsStorage) || what == string(corev1.ResourcePersistentVolumeClaims)) {
			out = append(out, n)
		}
	}
	return out
}

// Usage counts the claim and its requested storage (the larger of the
// request and what was allocated), also per storage class.
func (pvcEvaluator) Usage(obj runtime.Object, _ time.Time) (corev1.ResourceList, error) {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || pvc == nil {
		return nil, typeError("*v1.PersistentVolumeClaim", obj)
	}
	out := corev1.ResourceList{
		"count/persistentvolumeclaims":        one(),
		corev1.ResourcePersistentVolumeClaims: one(),
	}
	class := StorageClass(pvc)
	if class != "" {
		out[corev1.ResourceName(class+storageClassInfix+string(corev1.ResourcePersistentVolumeClaims))] = one()
	}
	if q, ok := ClaimStorage(pvc); ok {
		out[corev1.ResourceRequestsStorage] = q
		if class != "" {
			out[corev1.ResourceName(class+storageClassInfix+string(corev1.ResourceRequestsStorage))] = q.DeepCopy()
		}
	}
	return out, nil
}

// StorageClass is the claim's storage class name (the field, or the beta
// annotation).
func StorageClass(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return pvc.Annotations[betaStorageClassKey]
}

// ClaimStorage is the storage a claim charges.
func ClaimStorage(pvc *corev1.PersistentVolumeClaim) (resource.Quantity, bool) {
	q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if a, has := pvc.Status.AllocatedResources[corev1.ResourceStorage]; has && (!ok || a.Cmp(q) > 0) {
		q, ok = a, true
	}
	return q.DeepCopy(), ok
}

func (pvcEvaluator) MatchesScope(sel corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error) {
	return noScope(sel, obj)
}

func (pvcEvaluator) Constraints([]corev1.ResourceName, runtime.Object) error { return nil }
