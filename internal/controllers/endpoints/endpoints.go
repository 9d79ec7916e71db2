package endpoints

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

const (
	// maxEndpointsAddresses bounds an Endpoints object, as upstream.
	maxEndpointsAddresses = 1000
	// overCapacity is set on an Endpoints object that was truncated.
	overCapacity = "endpoints.kubernetes.io/over-capacity"
	// headlessLabel marks objects of headless Services.
	headlessLabel = "service.kubernetes.io/headless"
)

func labelsOf(set map[string]string) labels.Selector { return labels.SelectorFromValidatedSet(set) }

// syncEndpoints writes the Endpoints object of a Service with a selector,
// and deletes it once the Service is gone.
func (c *Controller) syncEndpoints(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		c.epWritten.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !hasSelector(svc) || svc.DeletionTimestamp != nil {
		return nil // selectorless Services keep the Endpoints their users write
	}
	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	cached := map[string]string{}
	if cur != nil {
		cached[name] = cur.ResourceVersion
	}
	if c.epWritten.stale(key, cached) {
		return errStale
	}
	pods, err := c.selected(svc)
	if err != nil {
		return err
	}
	subsets, truncated := endpointSubsets(svc, pods)

	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: maps.Clone(svc.Labels)}, Subsets: subsets}
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	want.Labels[discoveryv1.LabelSkipMirror] = "true"
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		want.Labels[headlessLabel] = ""
	} else {
		delete(want.Labels, headlessLabel)
	}
	if cur != nil {
		want.Annotations = maps.Clone(cur.Annotations)
	}
	if truncated {
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		want.Annotations[overCapacity] = "truncated"
	} else {
		delete(want.Annotations, overCapacity)
	}

	var out *corev1.Endpoints
	switch {
	case cur == nil:
		out, err = c.client.CoreV1().Endpoints(ns).Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			if !apierrors.IsAlreadyExists(err) && !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToCreateEndpoint", "Failed to create endpoint for service %s: %v", key, err)
			}
			return fmt.Errorf("create endpoints %s: %w", key, err)
		}
	case equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) && equality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(cur.Annotations, want.Annotations):
		return nil
	default:
		next := cur.DeepCopy()
		next.Labels, next.Annotations, next.Subsets = want.Labels, want.Annotations, want.Subsets
		out, err = c.client.CoreV1().Endpoints(ns).Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %s: %v", key, err)
			}
			return fmt.Errorf("update endpoints %s: %w", key, err)
		}
	}
	c.epWritten.wrote(key, name, out.ResourceVersion)
	return nil
}

// endpointSubsets builds the subsets of a Service's Endpoints from its
// pods: ready and not-ready addresses per set of resolved ports, sorted so
// that the same pods give the same object. It keeps at most
// maxEndpointsAddresses addresses, ready ones first, and reports whether
// it dropped any.
func endpointSubsets(svc *corev1.Service, pods []*corev1.Pod) ([]corev1.EndpointSubset, bool) {
	family := families(svc)[0]
	type entry struct {
		addr  corev1.EndpointAddress
		ready bool
		ports []corev1.EndpointPort
	}
	var entries []entry
	for _, pod := range pods {
		if !listed(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		ip := podIP(pod, family)
		if ip == "" {
			continue
		}
		addr := corev1.EndpointAddress{IP: ip, Hostname: hostname(pod, svc), TargetRef: podRef(pod)}
		if pod.Spec.NodeName != "" {
			addr.NodeName = &pod.Spec.NodeName
		}
		e := entry{addr: addr, ready: svc.Spec.PublishNotReadyAddresses || podReady(pod)}
		if len(svc.Spec.Ports) == 0 {
			// Only headless Services list addresses without ports.
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				entries = append(entries, e)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, ok := findPort(pod, sp)
			if !ok {
				continue
			}
			e.ports = append(e.ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: protocolOf(sp.Protocol), AppProtocol: sp.AppProtocol})
		}
		if len(e.ports) > 0 {
			entries = append(entries, e)
		}
	}
	// Ready addresses are kept first when there are too many.
	slices.SortStableFunc(entries, func(a, b entry) int {
		if a.ready != b.ready {
			if a.ready {
				return -1
			}
			return 1
		}
		return strings.Compare(a.addr.IP, b.addr.IP)
	})
	truncated := len(entries) > maxEndpointsAddresses
	if truncated {
		entries = entries[:maxEndpointsAddresses]
	}
	bySet := map[string]*corev1.EndpointSubset{}
	for _, e := range entries {
		slices.SortFunc(e.ports, func(a, b corev1.EndpointPort) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port), strings.Compare(string(a.Protocol), string(b.Protocol)))
		})
		k := fmt.Sprint(e.ports)
		s := bySet[k]
		if s == nil {
			s = &corev1.EndpointSubset{Ports: e.ports}
			bySet[k] = s
		}
		if e.ready {
			s.Addresses = append(s.Addresses, e.addr)
		} else {
			s.NotReadyAddresses = append(s.NotReadyAddresses, e.addr)
		}
	}
	keys := slices.Sorted(maps.Keys(bySet))
	out := make([]corev1.EndpointSubset, 0, len(keys))
	for _, k := range keys {
		s := bySet[k]
		byIP := func(a, b corev1.EndpointAddress) int {
			return cmp.Or(strings.Compare(a.IP, b.IP), strings.Compare(string(a.TargetRef.UID), string(b.TargetRef.UID)))
		}
		slices.SortFunc(s.Addresses, byIP)
		slices.SortFunc(s.NotReadyAddresses, byIP)
		out = append(out, *s)
	}
	if len(out) == 0 {
		return nil, truncated
	}
	return out, truncated
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
