package validation

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"skiff.dev/skiff/internal/apis/autoscaling"
	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// ValidateCreate returns the errors upstream reports when obj is created.
// Objects of types this package does not know, and nil pointers, are
// accepted.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return create(o, validatePodCreate)
	case *corev1.Service:
		return create(o, validateService)
	case *corev1.Endpoints:
		return create(o, validateEndpoints)
	case *corev1.ConfigMap:
		return create(o, validateConfigMap)
	case *corev1.Secret:
		return create(o, validateSecret)
	case *corev1.ServiceAccount:
		return create(o, validateServiceAccount)
	case *corev1.Namespace:
		return create(o, validateNamespace)
	case *corev1.Node:
		return create(o, validateNode)
	case *corev1.Event:
		return create(o, validateEvent)
	case *corev1.ResourceQuota:
		return create(o, validateResourceQuota)
	case *appsv1.Deployment:
		return create(o, validateDeployment)
	case *appsv1.ReplicaSet:
		return create(o, validateReplicaSet)
	case *appsv1.StatefulSet:
		return create(o, validateStatefulSet)
	case *appsv1.DaemonSet:
		return create(o, validateDaemonSet)
	case *batchv1.Job:
		return create(o, validateJob)
	case *batchv1.CronJob:
		return create(o, validateCronJobCreate)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return create(o, validateHPA)
	case *autoscalingv1.HorizontalPodAutoscaler:
		if o == nil {
			return nil
		}
		return validateHPA(autoscaling.V1ToV2(o))
	case *networkingv1.Ingress:
		return create(o, validateIngress)
	case *networkingv1.IngressClass:
		return create(o, validateIngressClass)
	case *networkingv1.NetworkPolicy:
		return create(o, validateNetworkPolicy)
	case *discoveryv1.EndpointSlice:
		return create(o, validateEndpointSlice)
	case *coordinationv1.Lease:
		return create(o, validateLease)
	case *policyv1.PodDisruptionBudget:
		return create(o, validatePodDisruptionBudget)
	case *corev1.LimitRange:
		return create(o, validateLimitRange)
	case *networkingv1.IPAddress:
		return create(o, validateIPAddress)
	case *settingsv1alpha1.PodPreset:
		return create(o, validatePodPreset)
	case *certificatesv1.CertificateSigningRequest:
		return create(o, validateCSR)
	}
	return nil
}

// ValidateUpdate returns the errors upstream reports when old is replaced by
// obj. Both must be of the same type; objects of types this package does
// not know are accepted.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return update(o, old, validatePodUpdate)
	case *corev1.Service:
		return update(o, old, validateServiceUpdate)
	case *corev1.Endpoints:
		return update(o, old, validateEndpointsUpdate)
	case *corev1.ConfigMap:
		return update(o, old, validateConfigMapUpdate)
	case *corev1.Secret:
		return update(o, old, validateSecretUpdate)
	case *corev1.ServiceAccount:
		return update(o, old, validateServiceAccountUpdate)
	case *corev1.Namespace:
		return update(o, old, validateNamespaceUpdate)
	case *corev1.Node:
		return update(o, old, validateNodeUpdate)
	case *corev1.Event:
		return update(o, old, validateEventUpdate)
	case *corev1.ResourceQuota:
		return update(o, old, validateResourceQuotaUpdate)
	case *appsv1.Deployment:
		return update(o, old, validateDeploymentUpdate)
	case *appsv1.ReplicaSet:
		return update(o, old, validateReplicaSetUpdate)
	case *appsv1.StatefulSet:
		return update(o, old, validateStatefulSetUpdate)
	case *appsv1.DaemonSet:
		return update(o, old, validateDaemonSetUpdate)
	case *batchv1.Job:
		return update(o, old, validateJobUpdate)
	case *batchv1.CronJob:
		return update(o, old, validateCronJobUpdate)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return update(o, old, validateHPAUpdate)
	case *autoscalingv1.HorizontalPodAutoscaler:
		return update(o, old, func(n, p *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			return validateHPAUpdate(autoscaling.V1ToV2(n), autoscaling.V1ToV2(p))
		})
	case *networkingv1.Ingress:
		return update(o, old, validateIngressUpdate)
	case *networkingv1.IngressClass:
		return update(o, old, validateIngressClassUpdate)
	case *networkingv1.NetworkPolicy:
		return update(o, old, validateNetworkPolicyUpdate)
	case *discoveryv1.EndpointSlice:
		return update(o, old, validateEndpointSliceUpdate)
	case *coordinationv1.Lease:
		return update(o, old, validateLeaseUpdate)
	case *policyv1.PodDisruptionBudget:
		return update(o, old, validatePodDisruptionBudgetUpdate)
	case *corev1.LimitRange:
		return update(o, old, validateLimitRangeUpdate)
	case *networkingv1.IPAddress:
		return update(o, old, validateIPAddressUpdate)
	case *settingsv1alpha1.PodPreset:
		return update(o, old, validatePodPresetUpdate)
	case *certificatesv1.CertificateSigningRequest:
		return update(o, old, validateCSRUpdate)
	}
	return nil
}

func create[T any](obj *T, validate func(*T) field.ErrorList) field.ErrorList {
	if obj == nil {
		return nil
	}
	return validate(obj)
}

func update[T any](obj *T, old runtime.Object, validate func(obj, old *T) field.ErrorList) field.ErrorList {
	prev, ok := any(old).(*T)
	if !ok || prev == nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("cannot validate an update of %T from %T", obj, old))}
	}
	if obj == nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("cannot validate an update to a nil %T", obj))}
	}
	return validate(obj, prev)
}
