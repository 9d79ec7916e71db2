package validation

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMeta(&ing.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validateIngressSpec(&ing.Spec)...)
}

func validateIngressUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	return append(validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta), validateIngressSpec(&ing.Spec)...)
}

func validateIngressSpec(spec *networkingv1.IngressSpec) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		allErrs = append(allErrs, field.Invalid(specPath, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, specPath.Child("defaultBackend"))...)
	}
	for i, rule := range spec.Rules {
		p := specPath.Child("rules").Index(i)
		if rule.Host != "" {
			allErrs = append(allErrs, validateIngressHost(rule.Host, p.Child("host"))...)
		}
		if rule.HTTP != nil {
			allErrs = append(allErrs, validateHTTPIngressRule(rule.HTTP, p.Child("http"))...)
		}
	}
	for i, tls := range spec.TLS {
		p := specPath.Child("tls").Index(i)
		for j, host := range tls.Hosts {
			hp := p.Child("hosts").Index(j)
			if strings.Contains(host, "*") {
				for _, msg := range utilvalidation.IsWildcardDNS1123Subdomain(host) {
					allErrs = append(allErrs, field.Invalid(hp, host, msg))
				}
				continue
			}
			allErrs = append(allErrs, dnsSubdomain(host, hp)...)
		}
		if tls.SecretName != "" {
			allErrs = append(allErrs, nameErrors(nameIsDNSSubdomain, tls.SecretName, p.Child("secretName"))...)
		}
	}
	if spec.IngressClassName != nil {
		allErrs = append(allErrs, nameErrors(nameIsDNSSubdomain, *spec.IngressClassName, specPath.Child("ingressClassName"))...)
	}
	return allErrs
}

func validateIngressHost(host string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if _, err := netip.ParseAddr(host); err == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, host, "must be a DNS name, not an IP address"))
	}
	if strings.Contains(host, "*") {
		for _, msg := range utilvalidation.IsWildcardDNS1123Subdomain(host) {
			allErrs = append(allErrs, field.Invalid(fldPath, host, msg))
		}
		return allErrs
	}
	return append(allErrs, dnsSubdomain(host, fldPath)...)
}

var (
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
	supportedPathTypes   = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypePrefix}
)

func validateHTTPIngressRule(rule *networkingv1.HTTPIngressRuleValue, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(rule.Paths) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("paths"), ""))
	}
	for i := range rule.Paths {
		allErrs = append(allErrs, validateHTTPIngressPath(&rule.Paths[i], fldPath.Child("paths").Index(i))...)
	}
	return allErrs
}

func validateHTTPIngressPath(p *networkingv1.HTTPIngressPath, fldPath *field.Path) field.ErrorList {
	if p.PathType == nil {
		return field.ErrorList{field.Required(fldPath.Child("pathType"), "pathType must be specified")}
	}
	var allErrs field.ErrorList
	pathPath := fldPath.Child("path")
	switch *p.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pathPath, p.Path, "must be an absolute path"))
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(p.Path, seq) {
				allErrs = append(allErrs, field.Invalid(pathPath, p.Path, fmt.Sprintf("must not contain '%s'", seq)))
			}
		}
		for _, suffix := range invalidPathSuffixes {
			if strings.HasSuffix(p.Path, suffix) {
				allErrs = append(allErrs, field.Invalid(pathPath, p.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pathPath, p.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *p.PathType, supportedPathTypes))
	}
	return append(allErrs, validateIngressBackend(&p.Backend, fldPath.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, fldPath *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(fldPath, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		return validateTypedLocalObjectReference(b.Resource.APIGroup, b.Resource.Kind, b.Resource.Name, fldPath.Child("resource"))
	case b.Service == nil:
		return field.ErrorList{field.Invalid(fldPath, "", "resource or service backend is required")}
	}
	var allErrs field.ErrorList
	svc := b.Service
	if svc.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("service", "name"), ""))
	} else {
		allErrs = append(allErrs, nameErrors(nameIsDNSLabel, svc.Name, fldPath.Child("service", "name"))...)
	}
	hasName, hasNumber := svc.Port.Name != "", svc.Port.Number != 0
	switch {
	case hasName && hasNumber:
		allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
	case hasName:
		for _, msg := range utilvalidation.IsValidPortName(svc.Port.Name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "name"), svc.Port.Name, msg))
		}
	case hasNumber:
		allErrs = append(allErrs, portNum(svc.Port.Number, fldPath.Child("service", "port", "number"))...)
	default:
		allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
	}
	return allErrs
}

func validateTypedLocalObjectReference(apiGroup *string, kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if apiGroup != nil {
		allErrs = append(allErrs, dnsSubdomain(*apiGroup, fldPath.Child("apiGroup"))...)
	}
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), "kind is required"))
	} else {
		allErrs = append(allErrs, pathSegment(kind, fldPath.Child("kind"))...)
	}
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "name is required"))
	} else {
		allErrs = append(allErrs, pathSegment(name, fldPath.Child("name"))...)
	}
	return allErrs
}

const maxIngressClassControllerLength = 250

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMeta(&ic.ObjectMeta, false, nameIsDNSSubdomain)
	controllerPath := specPath.Child("controller")
	if len(ic.Spec.Controller) > maxIngressClassControllerLength {
		allErrs = append(allErrs, field.TooLong(controllerPath, "", maxIngressClassControllerLength))
	}
	allErrs = append(allErrs, utilvalidation.IsDomainPrefixedPath(controllerPath, ic.Spec.Controller)...)
	if p := ic.Spec.Parameters; p != nil {
		pp := specPath.Child("parameters")
		allErrs = append(allErrs, validateTypedLocalObjectReference(p.APIGroup, p.Kind, p.Name, pp)...)
		scopes := []string{networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace}
		switch {
		case p.Scope == nil:
			allErrs = append(allErrs, field.Required(pp.Child("scope"), ""))
		case *p.Scope == networkingv1.IngressClassParametersReferenceScopeNamespace:
			if p.Namespace == nil {
				allErrs = append(allErrs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
			} else {
				allErrs = append(allErrs, nameErrors(nameIsDNSLabel, *p.Namespace, pp.Child("namespace"))...)
			}
		case *p.Scope == networkingv1.IngressClassParametersReferenceScopeCluster:
			if p.Namespace != nil {
				allErrs = append(allErrs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(pp.Child("scope"), *p.Scope, scopes))
		}
	}
	return allErrs
}

func validateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, immutable(ic.Spec.Controller, old.Spec.Controller, specPath.Child("controller"))...)
	return append(allErrs, validateIngressClass(ic)...)
}

var supportedPolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}

func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	allErrs := validateObjectMeta(&np.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &np.Spec
	allErrs = append(allErrs, metav1validation.ValidateLabelSelector(&spec.PodSelector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("podSelector"))...)
	for i, rule := range spec.Ingress {
		p := specPath.Child("ingress").Index(i)
		for j := range rule.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.From {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&rule.From[j], p.Child("from").Index(j))...)
		}
	}
	for i, rule := range spec.Egress {
		p := specPath.Child("egress").Index(i)
		for j := range rule.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.To {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&rule.To[j], p.Child("to").Index(j))...)
		}
	}
	typesPath := specPath.Child("policyTypes")
	if len(spec.PolicyTypes) > len(supportedPolicyTypes) {
		return append(allErrs, field.Invalid(typesPath, spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			allErrs = append(allErrs, field.NotSupported(typesPath.Index(i), t, supportedPolicyTypes))
		}
	}
	return allErrs
}

func validateNetworkPolicyUpdate(np, old *networkingv1.NetworkPolicy) field.ErrorList {
	return append(validateObjectMetaUpdate(&np.ObjectMeta, &old.ObjectMeta), validateNetworkPolicy(np)...)
}

func validateNetworkPolicyPort(port *networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if port.Protocol != nil {
		allErrs = append(allErrs, protocol(*port.Protocol, fldPath.Child("protocol"))...)
	}
	switch {
	case port.Port == nil:
		if port.EndPort != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
		}
	case port.Port.Type == intstr.Int:
		allErrs = append(allErrs, portNum(port.Port.IntVal, fldPath.Child("port"))...)
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), port.Port.IntVal, "must be greater than or equal to `port`"))
			}
			allErrs = append(allErrs, portNum(*port.EndPort, fldPath.Child("endPort"))...)
		}
	default:
		if port.EndPort != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
		}
		for _, msg := range utilvalidation.IsValidPortName(port.Port.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.StrVal, msg))
		}
	}
	return allErrs
}

func validateNetworkPolicyPeer(peer *networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	opts := metav1validation.LabelSelectorValidationOptions{}
	n := 0
	if peer.PodSelector != nil {
		n++
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(peer.PodSelector, opts, fldPath.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(peer.NamespaceSelector, opts, fldPath.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		allErrs = append(allErrs, validateIPBlock(peer.IPBlock, fldPath.Child("ipBlock"))...)
	}
	switch {
	case n == 0:
		allErrs = append(allErrs, field.Required(fldPath, "must specify a peer"))
	case n > 1 && peer.IPBlock != nil:
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not specify both ipBlock and another peer"))
	}
	return allErrs
}

func validateIPBlock(b *networkingv1.IPBlock, fldPath *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(fldPath.Child("cidr"), "")}
	}
	allErrs := utilvalidation.IsValidCIDR(fldPath.Child("cidr"), b.CIDR)
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return allErrs
	}
	for i, e := range b.Except {
		p := fldPath.Child("except").Index(i)
		errs := utilvalidation.IsValidCIDR(p, e)
		allErrs = append(allErrs, errs...)
		except, err := netip.ParsePrefix(e)
		if len(errs) > 0 || err != nil {
			continue
		}
		if !cidr.Contains(except.Addr()) || cidr.Bits() >= except.Bits() {
			allErrs = append(allErrs, field.Invalid(p, e, "must be a strict subset of `cidr`"))
		}
	}
	return allErrs
}

// protocolRef adapts protocol checks to the *Protocol fields of the
// networking and discovery APIs.
func protocolRef(p *corev1.Protocol, fldPath *field.Path) field.ErrorList {
	if p == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return protocol(*p, fldPath)
}
