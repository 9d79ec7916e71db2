package apiserver

import (
	"crypto/rand"
	"reflect"
	"time"

	"google.golang.org/protobuf/proto"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// prepareCreate sets what the server owns on a new object: identity,
// timestamps, generation, and a fresh status where status is a
// subresource.
func (k *kind) prepareCreate(obj runtime.Object, now time.Time) {
	m := accessor(obj)
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.NewTime(now))
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetResourceVersion("")
	m.SetManagedFields(nil)
	if k.hasSpec {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(generateName(m.GetGenerateName()))
	}
	if k.Status {
		zeroField(obj, "Status")
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: podQOS(&o.Spec)}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	}
}

// prepareUpdate carries over from old what a client may not change through
// this endpoint. subresource is "" or "status". It returns the object to
// store.
func (k *kind) prepareUpdate(obj, old runtime.Object, subresource string) runtime.Object {
	if subresource == "status" || subresource == "approval" {
		// Only the status changes; everything else is old's.
		out := old.DeepCopyObject()
		copyField(out, obj, "Status")
		if csr, ok := out.(*certificatesv1.CertificateSigningRequest); ok {
			prepareCSRUpdate(csr, old.(*certificatesv1.CertificateSigningRequest), subresource, time.Now())
		}
		return out
	}
	m, om := accessor(obj), accessor(old)
	m.SetUID(om.GetUID())
	m.SetName(om.GetName())
	m.SetNamespace(om.GetNamespace())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetGenerateName(om.GetGenerateName())
	m.SetManagedFields(om.GetManagedFields())
	// The version the update was based on; encode drops it before storing.
	m.SetResourceVersion(om.GetResourceVersion())
	if k.Status && subresource == "" {
		copyField(obj, old, "Status")
	}
	if k.hasSpec {
		gen := om.GetGeneration()
		if !specEqual(structField(obj, "Spec"), structField(old, "Spec")) {
			gen++
		}
		m.SetGeneration(gen)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		if subresource != "finalize" {
			o.Spec = old.(*corev1.Namespace).Spec
		}
	case *corev1.Service:
		prepareServiceUpdate(o, old.(*corev1.Service))
	case *certificatesv1.CertificateSigningRequest:
		prepareCSRUpdate(o, old.(*certificatesv1.CertificateSigningRequest), subresource, time.Now())
	}
	return obj
}

// specEqual compares two specs of the same type: protobuf messages
// (Istio's kinds) with proto.Equal — reflection would trip over their
// unexported state — and everything else semantically.
func specEqual(a, b reflect.Value) bool {
	if a.CanAddr() && b.CanAddr() {
		pa, aok := a.Addr().Interface().(proto.Message)
		pb, bok := b.Addr().Interface().(proto.Message)
		if aok && bok {
			return proto.Equal(pa, pb)
		}
	}
	return equality.Semantic.DeepEqual(a.Interface(), b.Interface())
}

// podQOS computes a pod's QoS class from its containers' resources, as
// the kubelet does.
func podQOS(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := 0, 0
	guaranteed := true
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq && !req.IsZero() {
				requests++
			}
			if hasLim && !lim.IsZero() {
				limits++
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case requests == 0 && limits == 0:
		return corev1.PodQOSBestEffort
	case guaranteed && len(all) > 0:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// generateName appends five random characters to base, as upstream does.
func generateName(base string) string {
	const max = 63 - 5
	if len(base) > max {
		base = base[:max]
	}
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = nameAlphabet[int(b[i])%len(nameAlphabet)]
	}
	return base + string(b)
}
