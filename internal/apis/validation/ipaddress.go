package validation

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ipAddressName: an IPAddress is named after its address, in canonical
// form.
func ipAddressName(name string, _ bool) []string {
	ip, err := netip.ParseAddr(name)
	if err != nil {
		return []string{err.Error()}
	}
	if ip.String() != name {
		return []string{"must be a canonical format IP address"}
	}
	return nil
}

// validateIPAddress checks an IPAddress as upstream does: a canonical
// address as its name and a parentRef naming a resource and an object.
func validateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	allErrs := validateObjectMeta(&ip.ObjectMeta, false, ipAddressName)
	ref := ip.Spec.ParentRef
	p := specPath.Child("parentRef")
	if ref == nil {
		return append(allErrs, field.Required(p, ""))
	}
	if ref.Group != "" {
		allErrs = append(allErrs, dnsSubdomain(ref.Group, p.Child("group"))...)
	}
	if ref.Resource == "" {
		allErrs = append(allErrs, field.Required(p.Child("resource"), ""))
	} else {
		allErrs = append(allErrs, pathSegment(ref.Resource, p.Child("resource"))...)
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(p.Child("name"), ""))
	} else {
		allErrs = append(allErrs, pathSegment(ref.Name, p.Child("name"))...)
	}
	if ref.Namespace != "" {
		allErrs = append(allErrs, pathSegment(ref.Namespace, p.Child("namespace"))...)
	}
	return allErrs
}

// validateIPAddressUpdate: the parentRef is immutable.
func validateIPAddressUpdate(ip, old *networkingv1.IPAddress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ip.ObjectMeta, &old.ObjectMeta)
	return append(allErrs, immutable(ip.Spec.ParentRef, old.Spec.ParentRef, specPath.Child("parentRef"))...)
}
