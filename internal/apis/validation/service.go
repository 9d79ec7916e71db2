package validation

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedServiceTypes = []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort,
	}
	supportedSessionAffinities = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	supportedIPFamilies        = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	supportedIPFamilyPolicies  = []corev1.IPFamilyPolicy{
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack,
	}
	supportedExternalTrafficPolicies = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	supportedInternalTrafficPolicies = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
)

// clusterIPs returns spec.clusterIPs, or clusterIP alone when only the
// singular field was given (upstream copies it over before validating).
func clusterIPs(spec *corev1.ServiceSpec) []string {
	if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
		return []string{spec.ClusterIP}
	}
	return spec.ClusterIPs
}

func isHeadless(spec *corev1.ServiceSpec) bool {
	ips := clusterIPs(spec)
	return len(ips) == 1 && ips[0] == corev1.ClusterIPNone
}

func externallyAccessible(spec *corev1.ServiceSpec) bool {
	return spec.Type == corev1.ServiceTypeLoadBalancer || spec.Type == corev1.ServiceTypeNodePort ||
		(spec.Type == corev1.ServiceTypeClusterIP && len(spec.ExternalIPs) > 0)
}

func validateService(svc *corev1.Service) field.ErrorList {
	allErrs := validateObjectMeta(&svc.ObjectMeta, true, nameIsDNSLabel)
	spec := &svc.Spec
	headless := isHeadless(spec)

	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		allErrs = append(allErrs, field.Required(specPath.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), corev1.ClusterIPNone,
				fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if len(clusterIPs(spec)) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// A CNAME may end in a dot to mark it fully qualified.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			allErrs = append(allErrs, dnsSubdomain(cname, specPath.Child("externalName"))...)
		} else {
			allErrs = append(allErrs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	portsPath := specPath.Child("ports")
	names := map[string]bool{}
	for i := range spec.Ports {
		allErrs = append(allErrs, validateServicePort(&spec.Ports[i], len(spec.Ports) > 1, names, portsPath.Index(i))...)
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	allErrs = append(allErrs, oneOf(spec.SessionAffinity, supportedSessionAffinities, specPath.Child("sessionAffinity"))...)
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		allErrs = append(allErrs, validateClientIPAffinity(spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("sessionAffinityConfig"),
				fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
		}
	}

	allErrs = append(allErrs, validateClusterIPs(spec)...)
	for i, ip := range spec.ExternalIPs {
		p := specPath.Child("externalIPs").Index(i)
		if errs := utilvalidation.IsValidIP(p, ip); len(errs) != 0 {
			allErrs = append(allErrs, errs...)
		} else {
			allErrs = append(allErrs, nonSpecialIP(ip, p)...)
		}
	}
	allErrs = append(allErrs, oneOf(spec.Type, supportedServiceTypes, specPath.Child("type"))...)

	nodePorts := map[string]bool{}
	ports := map[string]bool{}
	for i, port := range spec.Ports {
		p := portsPath.Index(i)
		if port.NodePort != 0 {
			// The configured node port range is the allocator's to check.
			if spec.Type == corev1.ServiceTypeClusterIP {
				allErrs = append(allErrs, field.Forbidden(p.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
			key := fmt.Sprintf("%s/%d", port.Protocol, port.NodePort)
			if nodePorts[key] {
				allErrs = append(allErrs, field.Duplicate(p.Child("nodePort"), port.NodePort))
			}
			nodePorts[key] = true
		}
		key := fmt.Sprintf("%s/%d", port.Protocol, port.Port)
		if ports[key] {
			allErrs = append(allErrs, field.Duplicate(p, corev1.ServicePort{Protocol: port.Protocol, Port: port.Port}))
		}
		ports[key] = true
	}

	if len(spec.LoadBalancerSourceRanges) > 0 {
		p := specPath.Child("LoadBalancerSourceRanges")
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, r := range spec.LoadBalancerSourceRanges {
			allErrs = append(allErrs, utilvalidation.IsValidCIDR(p.Index(i), strings.TrimSpace(r))...)
		}
	}
	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		allErrs = append(allErrs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
	}
	if spec.LoadBalancerClass != nil {
		if spec.Type == corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, qualifiedName(*spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		} else {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		}
	}

	if !externallyAccessible(spec) {
		if spec.ExternalTrafficPolicy != "" {
			allErrs = append(allErrs, field.Invalid(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
				"may only be set for externally-accessible services"))
		}
	} else {
		allErrs = append(allErrs, oneOf(spec.ExternalTrafficPolicy, supportedExternalTrafficPolicies, specPath.Child("externalTrafficPolicy"))...)
	}
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if !needsHealthCheck && spec.HealthCheckNodePort != 0 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort,
			"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	} else if needsHealthCheck && spec.HealthCheckNodePort != 0 {
		allErrs = append(allErrs, portNum(spec.HealthCheckNodePort, specPath.Child("healthCheckNodePort"))...)
	}

	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			allErrs = append(allErrs, field.Required(specPath.Child("internalTrafficPolicy"), ""))
		}
	} else {
		allErrs = append(allErrs, oneOf(*spec.InternalTrafficPolicy, supportedInternalTrafficPolicies, specPath.Child("internalTrafficPolicy"))...)
	}
	if td := spec.TrafficDistribution; td != nil {
		valid := []string{corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameNode, corev1.ServiceTrafficDistributionPreferSameZone}
		if *td != valid[0] && *td != valid[1] && *td != valid[2] {
			allErrs = append(allErrs, field.NotSupported(specPath.Child("trafficDistribution"), *td, valid))
		}
	}
	return allErrs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, names map[string]bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if requireName && sp.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if sp.Name != "" {
		allErrs = append(allErrs, dnsLabel(sp.Name, fldPath.Child("name"))...)
		if names[sp.Name] {
			allErrs = append(allErrs, field.Duplicate(fldPath.Child("name"), sp.Name))
		}
		names[sp.Name] = true
	}
	allErrs = append(allErrs, portNum(sp.Port, fldPath.Child("port"))...)
	allErrs = append(allErrs, protocol(sp.Protocol, fldPath.Child("protocol"))...)
	allErrs = append(allErrs, portNumOrName(sp.TargetPort, fldPath.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		allErrs = append(allErrs, qualifiedName(*sp.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}

// maxClientIPAffinitySeconds is one day.
const maxClientIPAffinitySeconds = 86400

func validateClientIPAffinity(c *corev1.SessionAffinityConfig, fldPath *field.Path) field.ErrorList {
	msg := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	switch {
	case c == nil:
		return field.ErrorList{field.Required(fldPath, msg)}
	case c.ClientIP == nil:
		return field.ErrorList{field.Required(fldPath.Child("clientIP"), msg)}
	case c.ClientIP.TimeoutSeconds == nil:
		return field.ErrorList{field.Required(fldPath.Child("clientIP", "timeoutSeconds"), msg)}
	}
	if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
		return field.ErrorList{field.Invalid(fldPath.Child("clientIP", "timeoutSeconds"), t,
			fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateClusterIPs checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy together, as upstream does for non-ExternalName Services.
func validateClusterIPs(spec *corev1.ServiceSpec) field.ErrorList {
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var allErrs field.ErrorList
	ipsPath := specPath.Child("clusterIPs")
	ips := clusterIPs(spec)
	if spec.ClusterIP != "" {
		if ips[0] != spec.ClusterIP {
			allErrs = append(allErrs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(ips) != 0 {
		allErrs = append(allErrs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		if f != corev1.IPv4Protocol && f != corev1.IPv6Protocol {
			allErrs = append(allErrs, field.NotSupported(specPath.Child("ipFamilies").Index(i), f, supportedIPFamilies))
		}
		if seen[f] {
			allErrs = append(allErrs, field.Duplicate(specPath.Child("ipFamilies").Index(i), f))
		}
		seen[f] = true
	}
	if spec.IPFamilyPolicy != nil {
		allErrs = append(allErrs, oneOf(*spec.IPFamilyPolicy, supportedIPFamilyPolicies, specPath.Child("ipFamilyPolicy"))...)
	}
	invalid := false
	for i, ip := range ips {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(ips) > 1 {
				invalid = true
				allErrs = append(allErrs, field.Invalid(ipsPath, ips, "'None' must be the first and only value"))
			}
			continue
		}
		errs := utilvalidation.IsValidIP(ipsPath.Index(i), ip)
		invalid = invalid || len(errs) > 0
		allErrs = append(allErrs, errs...)
	}
	if len(ips) > 2 {
		allErrs = append(allErrs, field.Invalid(ipsPath, ips, "may only hold up to 2 values"))
	}
	if invalid {
		return allErrs
	}
	if len(ips) == 2 && isIPv6(ips[0]) == isIPv6(ips[1]) {
		allErrs = append(allErrs, field.Invalid(ipsPath, ips, "may specify no more than one IP for each IP family"))
	}
	if !isHeadless(spec) {
		for i, ip := range ips {
			if i >= len(spec.IPFamilies) {
				break
			}
			switch {
			case spec.IPFamilies[i] == corev1.IPv4Protocol && isIPv6(ip):
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			case spec.IPFamilies[i] == corev1.IPv6Protocol && !isIPv6(ip):
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return allErrs
}

func isIPv6(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Is6() && !addr.Is4In6()
}

// nonSpecialIP refuses unspecified, loopback and link-local addresses.
func nonSpecialIP(ip string, fldPath *field.Path) field.ErrorList {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return field.ErrorList{field.Invalid(fldPath, ip, "must be a valid IP address")}
	}
	addr = addr.Unmap()
	var allErrs field.ErrorList
	if addr.IsUnspecified() {
		allErrs = append(allErrs, field.Invalid(fldPath, ip, fmt.Sprintf("may not be unspecified (%v)", ip)))
	}
	if addr.IsLoopback() {
		allErrs = append(allErrs, field.Invalid(fldPath, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if addr.IsLinkLocalUnicast() {
		allErrs = append(allErrs, field.Invalid(fldPath, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if addr.IsLinkLocalMulticast() {
		allErrs = append(allErrs, field.Invalid(fldPath, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return allErrs
}

// validateServiceUpdate keeps allocated cluster IPs and the primary IP
// family fixed, and the load balancer class and health check node port
// once set.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateClusterIPsUpdate(&svc.Spec, &old.Spec)...)
	allErrs = append(allErrs, validateIPFamiliesUpdate(&svc.Spec, &old.Spec)...)
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && old.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		!equalStringPtr(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	needsHC := func(s *corev1.ServiceSpec) bool {
		return s.Type == corev1.ServiceTypeLoadBalancer && s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	}
	if needsHC(&svc.Spec) && needsHC(&old.Spec) && svc.Spec.HealthCheckNodePort != old.Spec.HealthCheckNodePort {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("healthCheckNodePort"), "field is immutable"))
	}
	return append(allErrs, validateService(svc)...)
}

func validateClusterIPsUpdate(spec, old *corev1.ServiceSpec) field.ErrorList {
	if spec.Type == corev1.ServiceTypeExternalName || old.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadless(spec) && isHeadless(old) {
		return nil
	}
	var allErrs field.ErrorList
	ips, oldIPs := clusterIPs(spec), clusterIPs(old)
	ipsPath := specPath.Child("clusterIPs")
	switch {
	case len(oldIPs) == len(ips):
		for i, ip := range oldIPs {
			if ip != ips[i] {
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), ips, "may not change once set"))
			}
		}
	case len(oldIPs) > len(ips):
		if len(ips) == 0 {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), ips, "primary clusterIP can not be unset"))
		} else if ips[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), ips, "may not change once set"))
		}
		if len(ips) == 1 && (spec.IPFamilyPolicy == nil || *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("ipFamilyPolicy"), spec.IPFamilyPolicy,
				"must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	default:
		if len(oldIPs) > 0 && ips[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), ips, "may not change once set"))
		}
	}
	return allErrs
}

func validateIPFamiliesUpdate(spec, old *corev1.ServiceSpec) field.ErrorList {
	if spec.Type == corev1.ServiceTypeExternalName || old.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadless(spec) || isHeadless(old) {
		return nil
	}
	var allErrs field.ErrorList
	famPath := specPath.Child("ipFamilies")
	switch {
	case len(old.IPFamilies) == len(spec.IPFamilies):
		for i, f := range old.IPFamilies {
			if f != spec.IPFamilies[i] {
				allErrs = append(allErrs, field.Invalid(famPath.Index(0), spec.IPFamilies, "may not change once set"))
			}
		}
	case len(old.IPFamilies) > len(spec.IPFamilies):
		if len(spec.IPFamilies) == 0 {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), spec.IPFamilies, "primary ipFamily can not be unset"))
		} else if spec.IPFamilies[0] != old.IPFamilies[0] {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), spec.IPFamilies, "may not change once set"))
		}
		if len(spec.IPFamilies) == 1 && (spec.IPFamilyPolicy == nil || *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("ipFamilyPolicy"), spec.IPFamilyPolicy,
				"must be set to 'SingleStack' when releasing the secondary ipFamily"))
		}
	default:
		if len(old.IPFamilies) > 0 && spec.IPFamilies[0] != old.IPFamilies[0] {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), spec.IPFamilies, "may not change once set"))
		}
	}
	return allErrs
}

func equalStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
