package endpoints

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podChanged reports whether an update changes anything endpoints show.
func podChanged(old, cur *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		old.Status.Phase != cur.Status.Phase ||
		old.Status.PodIP != cur.Status.PodIP ||
		!equality.Semantic.DeepEqual(old.Status.PodIPs, cur.Status.PodIPs) ||
		podReady(old) != podReady(cur) ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		old.Spec.NodeName != cur.Spec.NodeName ||
		old.Spec.Hostname != cur.Spec.Hostname ||
		old.Spec.Subdomain != cur.Spec.Subdomain
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// listed says whether a pod belongs in endpoints at all: it has an IP,
// has not finished, and is not terminating unless those are wanted.
func listed(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// podIP returns the pod's address of the given family, or "".
func podIP(pod *corev1.Pod, family corev1.IPFamily) string {
	ips := []string{pod.Status.PodIP}
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && familyOf(a) == family {
			return a.Unmap().String()
		}
	}
	return ""
}

func familyOf(a netip.Addr) corev1.IPFamily {
	if a.Is4() || a.Is4In6() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// families returns the Service's IP families, primary first; a Service
// that names none gets its cluster IP's, or IPv4.
func families(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
		return []corev1.IPFamily{familyOf(a)}
	}
	return []corev1.IPFamily{corev1.IPv4Protocol}
}

func addressType(f corev1.IPFamily) discoveryv1.AddressType {
	if f == corev1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// findPort resolves a Service port's target on a pod: a number as it is,
// a name through the pod's container ports of the same protocol (sidecar
// init containers included).
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	case tp.Type == intstr.Int:
		return sp.Port, true
	}
	protocol := sp.Protocol
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	containers := slices.Clone(pod.Spec.Containers)
	for _, ic := range pod.Spec.InitContainers {
		if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, ic)
		}
	}
	for _, c := range containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == tp.StrVal && pp == protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// hostname is the pod's DNS name under a headless Service: set when the
// pod names the Service as its subdomain.
func hostname(pod *corev1.Pod, svc *corev1.Service) string {
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		return pod.Spec.Hostname
	}
	return ""
}

func podRef(pod *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
}

// selected lists the pods a Service selects; nil for a Service without a
// selector.
func (c *Controller) selected(svc *corev1.Service) ([]*corev1.Pod, error) {
	if !hasSelector(svc) {
		return nil, nil
	}
	return c.pods.Pods(svc.Namespace).List(labelsOf(svc.Spec.Selector))
}

// hasSelector says whether the controllers manage the Service's
// endpoints. ExternalName Services have none; a Service with an empty
// selector is treated as having none.
func hasSelector(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && len(svc.Spec.Selector) > 0
}
