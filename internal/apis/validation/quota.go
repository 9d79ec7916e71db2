package validation

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ResourceQuota validation, as upstream's ValidateResourceQuota and
// friends (pkg/apis/core/validation).

const (
	invalidQuotaResource = "must be a standard resource for quota"
	notIntegerMsg        = "must be an integer"
)

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	allErrs := validateObjectMeta(&q.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, validateResourceQuotaSpec(&q.Spec, specPath)...)
	allErrs = append(allErrs, validateQuotaList(q.Status.Hard, field.NewPath("status", "hard"))...)
	allErrs = append(allErrs, validateQuotaList(q.Status.Used, field.NewPath("status", "used"))...)
	return allErrs
}

// validateResourceQuotaUpdate also covers status updates: the API server
// keeps the spec of a status write and the status of a spec write, so
// validating the whole object checks whichever changed. Scopes are
// immutable.
func validateResourceQuotaUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&q.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateResourceQuotaSpec(&q.Spec, specPath)...)
	allErrs = append(allErrs, validateQuotaList(q.Status.Hard, field.NewPath("status", "hard"))...)
	allErrs = append(allErrs, validateQuotaList(q.Status.Used, field.NewPath("status", "used"))...)
	if !sameScopes(q.Spec.Scopes, old.Spec.Scopes) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("scopes"), q.Spec.Scopes, fieldImmutableErrorMsg))
	}
	return allErrs
}

const fieldImmutableErrorMsg = apivalidation.FieldImmutableErrorMsg

// sameScopes compares scope lists as sets.
func sameScopes(a, b []corev1.ResourceQuotaScope) bool {
	set := func(l []corev1.ResourceQuotaScope) map[corev1.ResourceQuotaScope]bool {
		m := map[corev1.ResourceQuotaScope]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	x, y := set(a), set(b)
	if len(x) != len(y) {
		return false
	}
	for s := range x {
		if !y[s] {
			return false
		}
	}
	return true
}

func validateResourceQuotaSpec(spec *corev1.ResourceQuotaSpec, fld *field.Path) field.ErrorList {
	allErrs := validateQuotaList(spec.Hard, fld.Child("hard"))
	allErrs = append(allErrs, validateQuotaScopes(spec, fld)...)
	allErrs = append(allErrs, validateScopeSelector(spec, fld)...)
	return allErrs
}

func validateQuotaList(list corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(list) {
		p := fldPath.Key(string(k))
		allErrs = append(allErrs, validateQuotaResourceName(string(k), p)...)
		allErrs = append(allErrs, validateQuotaQuantity(string(k), list[k], p)...)
	}
	return allErrs
}

func sortedResourceNames(list corev1.ResourceList) []corev1.ResourceName {
	m := make(map[string]bool, len(list))
	for k := range list {
		m[string(k)] = true
	}
	out := make([]corev1.ResourceName, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, corev1.ResourceName(k))
	}
	return out
}

// validateQuotaResourceName: a qualified name; unprefixed ones must be
// standard quota resources.
func validateQuotaResourceName(value string, fldPath *field.Path) field.ErrorList {
	if errs := qualifiedName(value, fldPath); len(errs) > 0 {
		return errs
	}
	if strings.Contains(value, "/") {
		return nil
	}
	var allErrs field.ErrorList
	if !isStandardResourceName(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, "must be a standard resource type or fully qualified"))
	}
	if !isStandardQuotaResourceName(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, invalidQuotaResource))
	}
	return allErrs
}

func validateQuotaQuantity(name string, q resource.Quantity, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if q.Sign() < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, q.String(), apivalidation.IsNegativeErrorMsg))
	}
	if isIntegerQuotaResource(name) && q.MilliValue()%1000 != 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, q, notIntegerMsg))
	}
	return allErrs
}

var standardResources = stringSet(
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
	corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceStorage, corev1.ResourceRequestsStorage,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
)

var standardQuotaResources = stringSet(
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsStorage, corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
	corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceSecrets, corev1.ResourcePersistentVolumeClaims, corev1.ResourceConfigMaps,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
)

var integerQuotaResources = stringSet(
	corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
)

func stringSet(names ...corev1.ResourceName) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[string(n)] = true
	}
	return m
}

func isQuotaHugePages(name string) bool {
	return strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) || strings.HasPrefix(name, corev1.ResourceRequestsHugePagesPrefix)
}

func isStandardResourceName(name string) bool {
	return standardResources[name] || isQuotaHugePages(name)
}

func isStandardQuotaResourceName(name string) bool {
	return standardQuotaResources[name] || isQuotaHugePages(name)
}

func isIntegerQuotaResource(name string) bool {
	return integerQuotaResources[name] || isExtendedResource(corev1.ResourceName(name))
}

var standardQuotaScopes = map[corev1.ResourceQuotaScope]bool{
	corev1.ResourceQuotaScopeTerminating:               true,
	corev1.ResourceQuotaScopeNotTerminating:            true,
	corev1.ResourceQuotaScopeBestEffort:                true,
	corev1.ResourceQuotaScopeNotBestEffort:             true,
	corev1.ResourceQuotaScopePriorityClass:             true,
	corev1.ResourceQuotaScopeCrossNamespacePodAffinity: true,
}

var podComputeQuotaResources = stringSet(
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
)

// scopeValidFor reports whether a scope can apply to a quota resource.
func scopeValidFor(scope corev1.ResourceQuotaScope, name string) bool {
	switch scope {
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return name == string(corev1.ResourcePods) || podComputeQuotaResources[name]
	case corev1.ResourceQuotaScopeBestEffort:
		return name == string(corev1.ResourcePods)
	}
	return true
}

// conflicting reports whether scopes holds a contradictory pair.
func conflicting(scopes map[corev1.ResourceQuotaScope]bool) bool {
	return scopes[corev1.ResourceQuotaScopeBestEffort] && scopes[corev1.ResourceQuotaScopeNotBestEffort] ||
		scopes[corev1.ResourceQuotaScopeTerminating] && scopes[corev1.ResourceQuotaScopeNotTerminating]
}

func validateQuotaScopes(spec *corev1.ResourceQuotaSpec, fld *field.Path) field.ErrorList {
	if len(spec.Scopes) == 0 {
		return nil
	}
	var allErrs field.ErrorList
	fldPath := fld.Child("scopes")
	seen := map[corev1.ResourceQuotaScope]bool{}
	for _, scope := range spec.Scopes {
		if !standardQuotaScopes[scope] {
			allErrs = append(allErrs, field.Invalid(fldPath, spec.Scopes, "unsupported scope"))
		}
		for _, k := range sortedResourceNames(spec.Hard) {
			if isStandardQuotaResourceName(string(k)) && !scopeValidFor(scope, string(k)) {
				allErrs = append(allErrs, field.Invalid(fldPath, spec.Scopes, "unsupported scope applied to resource"))
			}
		}
		seen[scope] = true
	}
	if conflicting(seen) {
		allErrs = append(allErrs, field.Invalid(fldPath, spec.Scopes, "conflicting scopes"))
	}
	return allErrs
}

func validateScopeSelector(spec *corev1.ResourceQuotaSpec, fld *field.Path) field.ErrorList {
	if spec.ScopeSelector == nil {
		return nil
	}
	var allErrs field.ErrorList
	fldPath := fld.Child("scopeSelector", "matchExpressions")
	seen := map[corev1.ResourceQuotaScope]bool{}
	for _, req := range spec.ScopeSelector.MatchExpressions {
		if !standardQuotaScopes[req.ScopeName] {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("scopeName"), req.ScopeName, "unsupported scope"))
		}
		for _, k := range sortedResourceNames(spec.Hard) {
			if isStandardQuotaResourceName(string(k)) && !scopeValidFor(req.ScopeName, string(k)) {
				allErrs = append(allErrs, field.Invalid(fldPath, spec.ScopeSelector, "unsupported scope applied to resource"))
			}
		}
		switch req.ScopeName {
		case corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort,
			corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
			corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
			if req.Operator != corev1.ScopeSelectorOpExists {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("operator"), req.Operator,
					"must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
			}
		}
		switch req.Operator {
		case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
			if len(req.Values) == 0 {
				allErrs = append(allErrs, field.Required(fldPath.Child("values"),
					"must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
			}
		case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
			if len(req.Values) != 0 {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("values"), req.Values,
					"must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
			}
		default:
			allErrs = append(allErrs, field.Invalid(fldPath.Child("operator"), req.Operator, "not a valid selector operator"))
		}
		seen[req.ScopeName] = true
	}
	if conflicting(seen) {
		allErrs = append(allErrs, field.Invalid(fldPath, spec.Scopes, "conflicting scopes"))
	}
	return allErrs
}
