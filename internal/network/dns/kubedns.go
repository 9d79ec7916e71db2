package dns

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/errdefs"
)

// The kube-dns Service, and what marks the EndpointSlices the nodes' DNS
// servers keep for it.
const (
	ServiceNamespace = metav1.NamespaceSystem
	ServiceName      = "kube-dns"
	// DefaultClusterIP is the kube-dns Service's address (the tenth of the
	// default service CIDR, as kubeadm's).
	DefaultClusterIP = "10.96.0.10"
	// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
	// nodes' slices.
	ManagedBy = "dns.skiff.dev"
)

// kubeDNSLabels are the kube-dns Service's labels (k8s-app=kube-dns is
// what tools look for; cluster-service lists it in `kubectl cluster-info`).
var kubeDNSLabels = map[string]string{
	"k8s-app":                       "kube-dns",
	"kubernetes.io/cluster-service": "true",
	"kubernetes.io/name":            "KubeDNS",
}

// EnsureService creates the Service kube-system/kube-dns, or brings an
// existing one back to shape: selectorless, ports dns 53/UDP and dns-tcp
// 53/TCP, internalTrafficPolicy Local (each node's pods reach their own
// node's server), clusterIP as given (empty lets the API server choose).
// An existing Service with another ClusterIP is a conflict: ClusterIPs
// cannot change.
func EnsureService(ctx context.Context, client kubernetes.Interface, clusterIP string) error {
	svcs := client.CoreV1().Services(ServiceNamespace)
	for attempt := 0; ; attempt++ {
		cur, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = svcs.Create(ctx, kubeDNSService(clusterIP), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) && attempt < 3 {
				continue
			}
			if err != nil {
				return fmt.Errorf("create service %s/%s: %w", ServiceNamespace, ServiceName, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("get service %s/%s: %w", ServiceNamespace, ServiceName, err)
		}
		if clusterIP != "" && cur.Spec.ClusterIP != "" && cur.Spec.ClusterIP != clusterIP {
			return fmt.Errorf("service %s/%s has clusterIP %s, not %s (delete it to change the address): %w",
				ServiceNamespace, ServiceName, cur.Spec.ClusterIP, clusterIP, errdefs.ErrConflict)
		}
		want := kubeDNSService(cur.Spec.ClusterIP)
		up := cur.DeepCopy()
		if up.Labels == nil {
			up.Labels = map[string]string{}
		}
		maps.Copy(up.Labels, kubeDNSLabels)
		up.Spec.Selector = nil
		up.Spec.Type = corev1.ServiceTypeClusterIP
		up.Spec.Ports = want.Spec.Ports
		up.Spec.InternalTrafficPolicy = want.Spec.InternalTrafficPolicy
		if equality.Semantic.DeepEqual(up, cur) {
			return nil
		}
		_, err = svcs.Update(ctx, up, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("update service %s/%s: %w", ServiceNamespace, ServiceName, err)
		}
		return nil
	}
}

func kubeDNSService(clusterIP string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: ServiceNamespace, Labels: maps.Clone(kubeDNSLabels)},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			},
			InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyLocal),
			SessionAffinity:       corev1.ServiceAffinityNone,
		},
	}
	if clusterIP != "" {
		svc.Spec.ClusterIPs = []string{clusterIP}
	}
	return svc
}

// SliceName is the name of the EndpointSlice the DNS server of node keeps
// in kube-system.
func SliceName(node string) string {
	n := ServiceName + "-" + node
	if len(n) > 253 {
		n = strings.TrimRight(n[:253], "-.")
	}
	return n
}

// desiredSlice is the node's slice: this server's address, ready, on this
// node, ports named as the Service's.
func (s *Server) desiredSlice(svc *corev1.Service, ip netip.Addr) *discoveryv1.EndpointSlice {
	at := discoveryv1.AddressTypeIPv4
	if ip.Is6() {
		at = discoveryv1.AddressTypeIPv6
	}
	port := int32(s.addr.Port())
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      SliceName(s.opts.NodeName),
			Namespace: ServiceNamespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: ServiceName,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: ptr.To(true),
			}},
		},
		AddressType: at,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false),
			},
			NodeName: ptr.To(s.opts.NodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(port)},
			{Name: ptr.To("dns-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)},
		},
	}
}

// syncSlice makes the node's slice match the kube-dns Service and this
// server's address. Without the Service, or without an address the API
// takes (not unspecified, not loopback), there is no slice.
func (s *Server) syncSlice(ctx context.Context) error {
	slices := s.client.DiscoveryV1().EndpointSlices(ServiceNamespace)
	name := SliceName(s.opts.NodeName)
	cur, err := s.slices.EndpointSlices(ServiceNamespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	svc, serr := s.services.Services(ServiceNamespace).Get(ServiceName)
	ip := s.addr.Addr()
	if s.opts.EndpointIP != "" {
		ip, _ = netip.ParseAddr(s.opts.EndpointIP)
	}
	if serr != nil || !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() {
		if cur != nil && cur.Labels[discoveryv1.LabelManagedBy] == ManagedBy {
			return s.deleteSlice(ctx)
		}
		return nil
	}
	want := s.desiredSlice(svc, ip)
	if cur == nil {
		_, err := slices.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create endpointslice %s/%s: %w", ServiceNamespace, name, err)
		}
		s.log.Info("published the node's kube-dns endpoint", "slice", name, "addr", ip.String())
		return nil
	}
	if cur.AddressType != want.AddressType {
		if err := s.deleteSlice(ctx); err != nil {
			return err
		}
		return fmt.Errorf("endpointslice %s/%s had another address type; recreating: %w", ServiceNamespace, name, errdefs.ErrConflict)
	}
	up := cur.DeepCopy()
	if up.Labels == nil {
		up.Labels = map[string]string{}
	}
	maps.Copy(up.Labels, want.Labels)
	up.OwnerReferences = want.OwnerReferences
	up.Endpoints = want.Endpoints
	up.Ports = want.Ports
	if equality.Semantic.DeepEqual(up, cur) {
		return nil
	}
	if _, err := slices.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update endpointslice %s/%s: %w", ServiceNamespace, name, err)
	}
	return nil
}

func (s *Server) deleteSlice(ctx context.Context) error {
	name := SliceName(s.opts.NodeName)
	err := s.client.DiscoveryV1().EndpointSlices(ServiceNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete endpointslice %s/%s: %w", ServiceNamespace, name, err)
	}
	return nil
}
