package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// Default applies the defaults upstream applies on create and update to obj
// (a typed object, e.g. *appsv1.Deployment). Objects of other types, and
// nil pointers, are left alone.
//
// Two defaults depend on the server-assigned identity and are applied only
// once it exists: a Job whose selector is generated (manualSelector unset
// or false) gets its selector and template labels only when metadata.uid is
// set. The API server should therefore call Default after it has filled in
// metadata.uid on create (calling it before as well does no harm).
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	// core/v1
	case *corev1.Pod:
		if o != nil {
			defaultPod(o)
		}
	case *corev1.PodTemplate:
		if o != nil {
			defaultPodTemplateSpec(&o.Template)
		}
	case *corev1.Service:
		if o != nil {
			defaultService(o)
		}
	case *corev1.Endpoints:
		if o != nil {
			defaultEndpoints(o)
		}
	case *corev1.Namespace:
		if o != nil {
			defaultNamespace(o)
		}
	case *corev1.Secret:
		if o != nil {
			defaultSecret(o)
		}
	case *corev1.Node:
		if o != nil {
			defaultNode(o)
		}
	case *corev1.LimitRange:
		if o != nil {
			defaultLimitRange(o)
		}
	case *corev1.ConfigMap, *corev1.ServiceAccount, *corev1.Event:
		// Nothing upstream defaults shows in these objects.

	// apps/v1
	case *appsv1.Deployment:
		if o != nil {
			defaultDeployment(o)
		}
	case *appsv1.ReplicaSet:
		if o != nil {
			defaultReplicaSet(o)
		}
	case *appsv1.StatefulSet:
		if o != nil {
			defaultStatefulSet(o)
		}
	case *appsv1.DaemonSet:
		if o != nil {
			defaultDaemonSet(o)
		}

	// batch/v1
	case *batchv1.Job:
		if o != nil {
			defaultJob(o)
		}
	case *batchv1.CronJob:
		if o != nil {
			defaultCronJob(o)
		}

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		if o != nil {
			defaultHPA(o)
		}
	case *autoscalingv1.HorizontalPodAutoscaler:
		if o != nil {
			defaultHPAv1(o)
		}

	// networking.k8s.io/v1
	case *networkingv1.NetworkPolicy:
		if o != nil {
			defaultNetworkPolicy(o)
		}
	case *networkingv1.IngressClass:
		if o != nil {
			defaultIngressClass(o)
		}
	case *networkingv1.Ingress:
		// networking/v1 has no Ingress defaults (pathType stays as sent).

	// discovery.k8s.io/v1
	case *discoveryv1.EndpointSlice:
		if o != nil {
			defaultEndpointSlice(o)
		}

	// settings.k8s.io/v1alpha1 (Skiff's own type)
	case *settingsv1alpha1.PodPreset:
		if o != nil {
			defaultPodPreset(o)
		}
	}
	// coordination.k8s.io/v1 Lease and policy/v1 PodDisruptionBudget have
	// no defaults upstream.
}
