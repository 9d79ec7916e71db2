package endpoints

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// syncSlices makes the EndpointSlices of a Service with a selector list
// its pods, and removes them when the Service is gone or has no selector.
func (c *Controller) syncSlices(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.existingSlices(ns, name, SliceControllerName)
	if err != nil {
		return err
	}
	if c.sliceWritten.stale(key, sliceRVs(existing)) {
		return errStale
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if svc == nil || !hasSelector(svc) || svc.DeletionTimestamp != nil {
		// The garbage collector would delete them with the Service; this
		// does not wait for it.
		return c.deleteSlices(ctx, key, existing, c.sliceWritten)
	}
	pods, err := c.selected(svc)
	if err != nil {
		return err
	}
	g := newGrouper()
	for _, fam := range families(svc) {
		t := addressType(fam)
		for _, pod := range pods {
			if !listed(pod, true) {
				continue
			}
			ip := podIP(pod, fam)
			if ip == "" {
				continue
			}
			var ports []discoveryv1.EndpointPort
			for i := range svc.Spec.Ports {
				sp := &svc.Spec.Ports[i]
				port, ok := findPort(pod, sp)
				if !ok {
					continue
				}
				ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(port),
					Protocol: ptr.To(protocolOf(sp.Protocol)), AppProtocol: sp.AppProtocol})
			}
			if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
				continue // no port of the Service resolves on this pod
			}
			g.add(t, ports, podEndpoint(svc, pod, ip))
		}
	}
	for _, gr := range g.groups {
		sortEndpoints(gr.endpoints)
	}
	labels := map[string]string{}
	for k, v := range svc.Labels {
		switch k {
		case discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, headlessLabel:
			continue
		}
		labels[k] = v
	}
	labels[discoveryv1.LabelServiceName] = svc.Name
	labels[discoveryv1.LabelManagedBy] = SliceControllerName
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		labels[headlessLabel] = ""
	}
	owner := *metav1.NewControllerRef(svc, serviceKind)
	err = c.reconcileSlices(ctx, sliceOwner{
		key: key, namespace: ns, service: name, managedBy: SliceControllerName,
		labels: labels, owner: owner, placeholder: addressType(families(svc)[0]), written: c.sliceWritten,
	}, g.groups, existing)
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices", "Error updating Endpoint Slices for Service %s: %v", key, err)
	}
	return err
}

// podEndpoint is a pod's entry in a slice. Ready means serving and not
// terminating (or publishNotReadyAddresses); serving is the pod's
// readiness whatever its termination.
func podEndpoint(svc *corev1.Service, pod *corev1.Pod, ip string) discoveryv1.Endpoint {
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || serving && !terminating
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(serving), Terminating: ptr.To(terminating)},
		TargetRef:  podRef(pod),
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = ptr.To(pod.Spec.NodeName)
	}
	if h := hostname(pod, svc); h != "" {
		ep.Hostname = ptr.To(h)
	}
	return ep
}

// deleteSlices deletes the given slices of a Service.
func (c *Controller) deleteSlices(ctx context.Context, key string, list []*discoveryv1.EndpointSlice, written *tracker) error {
	var errs []error
	for _, s := range list {
		err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		written.deleted(key, s.Name)
	}
	return errors.Join(errs...)
}
