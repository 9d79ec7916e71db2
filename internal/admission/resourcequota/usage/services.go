package usage

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var serviceNames = []corev1.ResourceName{
	"count/services",
	corev1.ResourceServices,
	corev1.ResourceServicesNodePorts,
	corev1.ResourceServicesLoadBalancers,
}

type serviceEvaluator struct{}

func (serviceEvaluator) GroupResource() schema.GroupResource {
	return schema.GroupResource{Resource: "services"}
}
func (serviceEvaluator) ChargesUpdates() bool { return true }

func (serviceEvaluator) MatchingResources(names []corev1.ResourceName) []corev1.ResourceName {
	return Intersect(names, serviceNames)
}

// Usage counts the service, its node ports (NodePort and LoadBalancer
// services; a load balancer that does not allocate node ports counts only
// the ports that have one) and load balancers.
func (serviceEvaluator) Usage(obj runtime.Object, _ time.Time) (corev1.ResourceList, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || svc == nil {
		return nil, typeError("*v1.Service", obj)
	}
	out := corev1.ResourceList{
		"count/services":                     one(),
		corev1.ResourceServices:              one(),
		corev1.ResourceServicesNodePorts:     *resource.NewQuantity(0, resource.DecimalSI),
		corev1.ResourceServicesLoadBalancers: *resource.NewQuantity(0, resource.DecimalSI),
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(svc.Spec.Ports)), resource.DecimalSI)
	case corev1.ServiceTypeLoadBalancer:
		ports := len(svc.Spec.Ports)
		if a := svc.Spec.AllocateLoadBalancerNodePorts; a != nil && !*a {
			ports = 0
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					ports++
				}
			}
		}
		out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(ports), resource.DecimalSI)
		out[corev1.ResourceServicesLoadBalancers] = one()
	}
	return out, nil
}

func (serviceEvaluator) MatchesScope(sel corev1.ScopedResourceSelectorRequirement, obj runtime.Object) (bool, error) {
	return noScope(sel, obj)
}

func (serviceEvaluator) Constraints([]corev1.ResourceName, runtime.Object) error { return nil }

// ServiceType is what decides a service's quota usage beyond its count;
// the controller recounts when it changes.
func ServiceType(svc *corev1.Service) corev1.ServiceType {
	if svc.Spec.Type == "" {
		return corev1.ServiceTypeClusterIP
	}
	return svc.Spec.Type
}
