package validation

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	maxEndpointSliceEndpoints = 1000
	maxEndpointAddresses      = 100
	maxEndpointSlicePorts     = 20000
	maxEndpointTopologyLabels = 16
	maxEndpointZoneHints      = 8
)

var supportedAddressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := validateObjectMeta(&es.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, oneOf(es.AddressType, supportedAddressTypes, field.NewPath("addressType"))...)
	allErrs = append(allErrs, validateSliceEndpoints(es.Endpoints, es.AddressType, field.NewPath("endpoints"))...)
	return append(allErrs, validateSlicePorts(es.Ports, field.NewPath("ports"))...)
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&es.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateEndpointSlice(es)...)
	return append(allErrs, immutable(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addressType discoveryv1.AddressType, fldPath *field.Path) field.ErrorList {
	if len(endpoints) > maxEndpointSliceEndpoints {
		return field.ErrorList{field.TooMany(fldPath, len(endpoints), maxEndpointSliceEndpoints)}
	}
	var allErrs field.ErrorList
	for i, ep := range endpoints {
		p := fldPath.Index(i)
		addrPath := p.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			allErrs = append(allErrs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxEndpointAddresses:
			allErrs = append(allErrs, field.TooMany(addrPath, len(ep.Addresses), maxEndpointAddresses))
		}
		for j, addr := range ep.Addresses {
			ap := addrPath.Index(j)
			switch addressType {
			case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
				if errs := utilvalidation.IsValidIP(ap, addr); len(errs) > 0 {
					allErrs = append(allErrs, errs...)
					continue
				}
				if isIPv6(addr) != (addressType == discoveryv1.AddressTypeIPv6) {
					allErrs = append(allErrs, field.Invalid(ap, addr, "must be a valid "+string(addressType)+" address"))
					continue
				}
				allErrs = append(allErrs, nonSpecialIP(addr, ap)...)
			case discoveryv1.AddressTypeFQDN:
				allErrs = append(allErrs, utilvalidation.IsFullyQualifiedDomainName(ap, addr)...)
			}
		}
		if ep.NodeName != nil {
			allErrs = append(allErrs, nameErrors(nameIsDNSSubdomain, *ep.NodeName, p.Child("nodeName"))...)
		}
		topologyPath := p.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxEndpointTopologyLabels {
			allErrs = append(allErrs, field.TooMany(topologyPath, len(ep.DeprecatedTopology), maxEndpointTopologyLabels))
		}
		allErrs = append(allErrs, metav1validation.ValidateLabels(ep.DeprecatedTopology, topologyPath)...)
		if ep.Hostname != nil {
			allErrs = append(allErrs, dnsLabel(*ep.Hostname, p.Child("hostname"))...)
		}
		if ep.Hints != nil {
			zonesPath := p.Child("hints", "forZones")
			if len(ep.Hints.ForZones) > maxEndpointZoneHints {
				allErrs = append(allErrs, field.TooMany(zonesPath, len(ep.Hints.ForZones), maxEndpointZoneHints))
			}
			zones := map[string]bool{}
			for j, z := range ep.Hints.ForZones {
				if zones[z.Name] {
					allErrs = append(allErrs, field.Duplicate(zonesPath.Index(j).Child("name"), z.Name))
				}
				zones[z.Name] = true
				for _, msg := range utilvalidation.IsValidLabelValue(z.Name) {
					allErrs = append(allErrs, field.Invalid(zonesPath.Index(j).Child("name"), z.Name, msg))
				}
			}
		}
	}
	return allErrs
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	if len(ports) > maxEndpointSlicePorts {
		return field.ErrorList{field.TooMany(fldPath, len(ports), maxEndpointSlicePorts)}
	}
	var allErrs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		p := fldPath.Index(i)
		switch {
		case port.Name == nil:
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		case *port.Name != "":
			allErrs = append(allErrs, dnsLabel(*port.Name, p.Child("name"))...)
			if names[*port.Name] {
				allErrs = append(allErrs, field.Duplicate(p.Child("name"), *port.Name))
			}
			names[*port.Name] = true
		}
		allErrs = append(allErrs, protocolRef(port.Protocol, p.Child("protocol"))...)
		if port.Port != nil {
			allErrs = append(allErrs, portNum(*port.Port, p.Child("port"))...)
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, qualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return allErrs
}
