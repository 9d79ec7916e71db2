package validation

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const immutableWhenSet = "field is immutable when `immutable` is set"

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain)
	total := 0
	for key, value := range cm.Data {
		p := field.NewPath("data").Key(key)
		for _, msg := range utilvalidation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(p, key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			allErrs = append(allErrs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		total += len(value)
	}
	for key, value := range cm.BinaryData {
		for _, msg := range utilvalidation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		total += len(value)
	}
	if total > corev1.MaxSecretSize {
		// The error refers to the whole object, hence the empty path.
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", corev1.MaxSecretSize))
	}
	return allErrs
}

func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	if old.Immutable != nil && *old.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableWhenSet))
		}
		if !reflect.DeepEqual(cm.Data, old.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableWhenSet))
		}
		if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), immutableWhenSet))
		}
	}
	return append(allErrs, validateConfigMap(cm)...)
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	allErrs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	dataPath := field.NewPath("data")
	total := 0
	for key, value := range s.Data {
		for _, msg := range utilvalidation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(value)
	}
	// stringData is normally folded into data by defaulting; count what is
	// left so that an undefaulted object is judged the same way.
	for key, value := range s.StringData {
		if _, inData := s.Data[key]; inData {
			continue
		}
		for _, msg := range utilvalidation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(value)
	}
	if total > corev1.MaxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	has := func(key string) bool {
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		return inData || inString
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		allErrs = append(allErrs, requireJSONKey(s, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		allErrs = append(allErrs, requireJSONKey(s, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			allErrs = append(allErrs,
				field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 && s.StringData[corev1.SSHAuthPrivateKey] == "" {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if !has(corev1.TLSCertKey) {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if !has(corev1.TLSPrivateKeyKey) {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// requireJSONKey requires key and that its value is a JSON object.
func requireJSONKey(s *corev1.Secret, key string, dataPath *field.Path) field.ErrorList {
	value, ok := s.Data[key]
	if !ok {
		str, inString := s.StringData[key]
		if !inString {
			return field.ErrorList{field.Required(dataPath.Key(key), "")}
		}
		value = []byte(str)
	}
	if err := json.Unmarshal(value, &map[string]any{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, immutable(s.Type, old.Type, field.NewPath("type"))...)
	if old.Immutable != nil && *old.Immutable {
		if s.Immutable == nil || !*s.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableWhenSet))
		}
		if !reflect.DeepEqual(s.Data, old.Data) || len(s.StringData) > 0 {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableWhenSet))
		}
	}
	return append(allErrs, validateSecret(s)...)
}

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	return append(validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta), validateServiceAccount(sa)...)
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel)
	return append(allErrs, validateNamespaceFinalizers(ns.Spec.Finalizers)...)
}

func validateNamespaceFinalizers(finalizers []corev1.FinalizerName) field.ErrorList {
	var allErrs field.ErrorList
	p := field.NewPath("spec", "finalizers")
	for i, f := range finalizers {
		fp := p.Index(i)
		if f == "" {
			allErrs = append(allErrs, field.Required(fp, ""))
			continue
		}
		allErrs = append(allErrs, qualifiedName(string(f), fp)...)
		if !standardFinalizers[string(f)] && !containsSlash(string(f)) {
			allErrs = append(allErrs, field.Invalid(fp, string(f), "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return allErrs
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// validateNamespaceUpdate checks metadata only: upstream keeps spec and
// status of a namespace out of ordinary updates.
func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
}

func validateNode(n *corev1.Node) field.ErrorList {
	allErrs := validateObjectMeta(&n.ObjectMeta, false, nameIsDNSSubdomain)
	allErrs = append(allErrs, validateNodeTaints(n.Spec.Taints, specPath.Child("taints"))...)
	allErrs = append(allErrs, validateNodeResources(n)...)
	podCIDRsPath := specPath.Child("podCIDRs")
	for i, cidr := range n.Spec.PodCIDRs {
		allErrs = append(allErrs, utilvalidation.IsValidCIDR(podCIDRsPath.Index(i), cidr)...)
	}
	if len(n.Spec.PodCIDRs) > 1 {
		seen := map[string]bool{}
		v6 := 0
		for i, cidr := range n.Spec.PodCIDRs {
			if seen[cidr] {
				allErrs = append(allErrs, field.Duplicate(podCIDRsPath.Index(i), cidr))
			}
			seen[cidr] = true
			if p, err := netip.ParsePrefix(cidr); err == nil && p.Addr().Is6() {
				v6++
			}
		}
		if len(n.Spec.PodCIDRs) > 2 || v6 != 1 {
			allErrs = append(allErrs, field.Invalid(podCIDRsPath, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
		}
	}
	return allErrs
}

func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[string]bool{}
	for i, t := range taints {
		p := fldPath.Index(i)
		allErrs = append(allErrs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		for _, msg := range utilvalidation.IsValidLabelValue(t.Value) {
			allErrs = append(allErrs, field.Invalid(p.Child("value"), t.Value, msg))
		}
		allErrs = append(allErrs, taintEffect(t.Effect, p.Child("effect"))...)
		key := string(t.Effect) + "\x00" + t.Key
		if seen[key] {
			dup := field.Duplicate(p, t)
			dup.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, dup)
		}
		seen[key] = true
	}
	return allErrs
}

func validateNodeResources(n *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for name, q := range n.Status.Capacity {
		if q.Sign() < 0 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("status", "capacity", string(name)), q.String(), "must be greater than or equal to 0"))
		}
	}
	for name, q := range n.Status.Allocatable {
		if q.Sign() < 0 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("status", "allocatable", string(name)), q.String(), "must be greater than or equal to 0"))
		}
	}
	return allErrs
}

// validateNodeUpdate lets podCIDRs and providerID be set once.
func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&n.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateNode(n)...)
	if len(old.Spec.PodCIDRs) > 0 && !reflect.DeepEqual(old.Spec.PodCIDRs, n.Spec.PodCIDRs) {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != n.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	if n.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("externalID"), "may not be updated"))
	}
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range n.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	return allErrs
}

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	allErrs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain)
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := subsetsPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				allErrs = append(allErrs, dnsLabel(port.Name, pp.Child("name"))...)
			}
			allErrs = append(allErrs, portNum(port.Port, pp.Child("port"))...)
			allErrs = append(allErrs, protocol(port.Protocol, pp.Child("protocol"))...)
			if port.AppProtocol != nil {
				allErrs = append(allErrs, qualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return allErrs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	allErrs := utilvalidation.IsValidIP(fldPath.Child("ip"), a.IP)
	if a.Hostname != "" {
		allErrs = append(allErrs, dnsLabel(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		allErrs = append(allErrs, nameErrors(nameIsDNSSubdomain, *a.NodeName, fldPath.Child("nodeName"))...)
	}
	if len(allErrs) == 0 {
		allErrs = append(allErrs, nonSpecialIP(a.IP, fldPath.Child("ip"))...)
	}
	return allErrs
}

func validateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	return append(validateObjectMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta), validateEndpoints(ep)...)
}

// Event length limits.
const (
	eventReasonLimit            = 128
	eventActionLimit            = 128
	eventReportingInstanceLimit = 128
	eventNoteLimit              = 1024
)

// validateEvent applies upstream's checks for core/v1 Events: names only
// need to be usable in a URL path, and the namespace must match that of the
// involved object. Events with an eventTime (written by the events.k8s.io
// API) must carry the reporting fields.
func validateEvent(e *corev1.Event) field.ErrorList {
	allErrs := validateObjectMeta(&e.ObjectMeta, true, nameIsPathSegment)
	involvedNS := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			allErrs = append(allErrs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return allErrs
	}
	if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		allErrs = append(allErrs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	if e.ReportingController == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("source"), ""))
	}
	allErrs = append(allErrs, qualifiedName(e.ReportingController, field.NewPath("source"))...)
	limit := func(value, name string, max int) {
		if value == "" && name != "message" {
			allErrs = append(allErrs, field.Required(field.NewPath(name), ""))
		}
		if len(value) > max {
			allErrs = append(allErrs, field.Invalid(field.NewPath(name), "", fmt.Sprintf("can have at most %v characters", max)))
		}
	}
	limit(e.ReportingInstance, "reportingInstance", eventReportingInstanceLimit)
	limit(e.Action, "action", eventActionLimit)
	limit(e.Reason, "reason", eventReasonLimit)
	limit(e.Message, "message", eventNoteLimit)
	return allErrs
}

func validateEventUpdate(e, old *corev1.Event) field.ErrorList {
	return append(validateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta), validateEvent(e)...)
}
