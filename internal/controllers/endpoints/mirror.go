package endpoints

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

const (
	// maxMirroredPerSubset bounds the addresses mirrored from one subset.
	maxMirroredPerSubset = 1000
	// leaderAnnotation marks Endpoints used as leader election locks,
	// which are not mirrored.
	leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"
)

var endpointsKind = corev1.SchemeGroupVersion.WithKind("Endpoints")

// syncMirror mirrors the Endpoints of a Service without a selector into
// EndpointSlices, and removes the mirrored slices when there is nothing
// (left) to mirror.
func (c *Controller) syncMirror(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.existingSlices(ns, name, MirrorControllerName)
	if err != nil {
		return err
	}
	if c.mirrorWritten.stale(key, sliceRVs(existing)) {
		return errStale
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if svc == nil || len(svc.Spec.Selector) > 0 || svc.DeletionTimestamp != nil || ep == nil || ep.DeletionTimestamp != nil ||
		ep.Labels[discoveryv1.LabelSkipMirror] == "true" || ep.Annotations[leaderAnnotation] != "" {
		return c.deleteSlices(ctx, key, existing, c.mirrorWritten)
	}
	g := newGrouper()
	for _, subset := range ep.Subsets {
		ports := make([]discoveryv1.EndpointPort, 0, len(subset.Ports))
		for _, p := range subset.Ports {
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port),
				Protocol: ptr.To(protocolOf(p.Protocol)), AppProtocol: p.AppProtocol})
		}
		n := 0
		for _, list := range []struct {
			addrs []corev1.EndpointAddress
			ready bool
		}{{subset.Addresses, true}, {subset.NotReadyAddresses, false}} {
			for _, a := range list.addrs {
				if n >= maxMirroredPerSubset {
					break
				}
				addr, err := netip.ParseAddr(a.IP)
				if err != nil {
					continue
				}
				addr = addr.Unmap()
				t := discoveryv1.AddressTypeIPv4
				if addr.Is6() {
					t = discoveryv1.AddressTypeIPv6
				}
				e := discoveryv1.Endpoint{
					Addresses:  []string{addr.String()},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(list.ready)},
					TargetRef:  a.TargetRef,
					NodeName:   a.NodeName,
				}
				if a.Hostname != "" {
					e.Hostname = ptr.To(a.Hostname)
				}
				g.add(t, ports, e)
				n++
			}
		}
	}
	for _, gr := range g.groups {
		sortEndpoints(gr.endpoints)
	}
	labels := map[string]string{}
	for k, v := range ep.Labels {
		labels[k] = v
	}
	labels[discoveryv1.LabelServiceName] = name
	labels[discoveryv1.LabelManagedBy] = MirrorControllerName
	annotations := map[string]string{}
	for k, v := range ep.Annotations {
		if k != corev1.EndpointsLastChangeTriggerTime && k != corev1.LastAppliedConfigAnnotation {
			annotations[k] = v
		}
	}
	owner := *metav1.NewControllerRef(ep, endpointsKind)
	err = c.reconcileSlices(ctx, sliceOwner{
		key: key, namespace: ns, service: name, managedBy: MirrorControllerName,
		labels: labels, annotations: annotations, owner: owner, written: c.mirrorWritten,
	}, g.groups, existing)
	if err != nil {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices", "Error updating Endpoint Slices for Endpoints %s: %v", key, err)
	}
	return err
}
