package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var standardLimitTypes = map[corev1.LimitType]bool{
	corev1.LimitTypePod: true, corev1.LimitTypeContainer: true, corev1.LimitTypePersistentVolumeClaim: true,
}

// validateLimitRange checks a LimitRange as upstream does: one item per
// type, resource names fit for the type, and min <= defaultRequest <=
// default <= max with a maxLimitRequestRatio of at least 1 that max/min
// can meet.
func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	allErrs := validateObjectMeta(&lr.ObjectMeta, true, nameIsDNSSubdomain)
	fldPath := specPath.Child("limits")
	types := map[corev1.LimitType]bool{}
	for i := range lr.Spec.Limits {
		idxPath := fldPath.Index(i)
		limit := &lr.Spec.Limits[i]
		allErrs = append(allErrs, validateLimitType(limit.Type, idxPath.Child("type"))...)
		if types[limit.Type] {
			allErrs = append(allErrs, field.Duplicate(idxPath.Child("type"), limit.Type))
		}
		types[limit.Type] = true

		keys := map[corev1.ResourceName]bool{}
		collect := func(list corev1.ResourceList, child string) {
			for k := range list {
				allErrs = append(allErrs, validateLimitRangeResourceName(limit.Type, k, idxPath.Child(child).Key(string(k)))...)
				keys[k] = true
			}
		}
		collect(limit.Max, "max")
		collect(limit.Min, "min")
		if limit.Type == corev1.LimitTypePod {
			if len(limit.Default) > 0 {
				allErrs = append(allErrs, field.Forbidden(idxPath.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(limit.DefaultRequest) > 0 {
				allErrs = append(allErrs, field.Forbidden(idxPath.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		} else {
			collect(limit.Default, "default")
			collect(limit.DefaultRequest, "defaultRequest")
		}
		if limit.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := limit.Min[corev1.ResourceStorage]
			_, hasMax := limit.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				allErrs = append(allErrs, field.Required(idxPath.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		collect(limit.MaxLimitRequestRatio, "maxLimitRequestRatio")
		for k := range keys {
			allErrs = append(allErrs, validateLimitBounds(limit, k, idxPath)...)
		}
	}
	return allErrs
}

func validateLimitType(t corev1.LimitType, fldPath *field.Path) field.ErrorList {
	if errs := qualifiedName(string(t), fldPath); len(errs) > 0 {
		return errs
	}
	if !strings.Contains(string(t), "/") && !standardLimitTypes[t] {
		return field.ErrorList{field.Invalid(fldPath, t, "must be a standard limit type or fully qualified")}
	}
	return nil
}

func validateLimitRangeResourceName(t corev1.LimitType, name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	switch t {
	case corev1.LimitTypePod, corev1.LimitTypeContainer:
		return validateContainerResourceName(name, fldPath)
	}
	if errs := qualifiedName(string(name), fldPath); len(errs) > 0 {
		return errs
	}
	if !strings.Contains(string(name), "/") && !standardResourceNames[name] {
		return field.ErrorList{field.Invalid(fldPath, name, "must be a standard resource type or fully qualified")}
	}
	return nil
}

// standardResourceNames are upstream's unprefixed resource names.
var standardResourceNames = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
	corev1.ResourceRequestsCPU: true, corev1.ResourceRequestsMemory: true, corev1.ResourceRequestsEphemeralStorage: true,
	corev1.ResourceLimitsCPU: true, corev1.ResourceLimitsMemory: true, corev1.ResourceLimitsEphemeralStorage: true,
	corev1.ResourcePods: true, corev1.ResourceQuotas: true, corev1.ResourceServices: true,
	corev1.ResourceReplicationControllers: true, corev1.ResourceSecrets: true, corev1.ResourcePersistentVolumeClaims: true,
	corev1.ResourceConfigMaps: true, corev1.ResourceServicesNodePorts: true, corev1.ResourceServicesLoadBalancers: true,
	corev1.ResourceStorage: true, corev1.ResourceRequestsStorage: true,
}

// validateLimitBounds checks how one resource's values relate.
func validateLimitBounds(limit *corev1.LimitRangeItem, k corev1.ResourceName, idxPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	key := string(k)
	minQ, hasMin := limit.Min[k]
	maxQ, hasMax := limit.Max[k]
	def, hasDef := limit.Default[k]
	defReq, hasDefReq := limit.DefaultRequest[k]
	ratio, hasRatio := limit.MaxLimitRequestRatio[k]
	if limit.Type == corev1.LimitTypePod {
		hasDef, hasDefReq = false, false
	}
	if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("min").Key(key), minQ.String(), fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
	}
	if hasDefReq && hasMin && minQ.Cmp(defReq) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("defaultRequest").Key(key), defReq.String(), fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), defReq.String())))
	}
	if hasDefReq && hasMax && defReq.Cmp(maxQ) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("defaultRequest").Key(key), defReq.String(), fmt.Sprintf("default request value %s is greater than max value %s", defReq.String(), maxQ.String())))
	}
	if hasDefReq && hasDef && defReq.Cmp(def) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("defaultRequest").Key(key), defReq.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", defReq.String(), def.String())))
	}
	if hasDef && hasMin && minQ.Cmp(def) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("default").Key(key), minQ.String(), fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), def.String())))
	}
	if hasDef && hasMax && def.Cmp(maxQ) > 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("default").Key(key), maxQ.String(), fmt.Sprintf("default value %s is greater than max value %s", def.String(), maxQ.String())))
	}
	if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("maxLimitRequestRatio").Key(key), ratio.String(), fmt.Sprintf("ratio %s is less than 1", ratio.String())))
	}
	if hasRatio && hasMin && hasMax {
		ratioV := float64(ratio.Value())
		minV, maxV := minQ.Value(), maxQ.Value()
		if ratio.Value() < resource.MaxMilliValue && minV < resource.MaxMilliValue && maxV < resource.MaxMilliValue {
			ratioV = float64(ratio.MilliValue()) / 1000
			minV, maxV = minQ.MilliValue(), maxQ.MilliValue()
		}
		if bound := float64(maxV) / float64(minV); ratioV > bound {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("maxLimitRequestRatio").Key(key), ratio.String(), fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), bound)))
		}
	}
	// Resources that cannot be overcommitted need default == defaultRequest.
	if !overcommitAllowed(k) && hasDef && hasDefReq && def.Cmp(defReq) != 0 {
		allErrs = append(allErrs, field.Invalid(idxPath.Child("defaultRequest").Key(key), defReq.String(), fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", def.String(), defReq.String(), key)))
	}
	return allErrs
}

func validateLimitRangeUpdate(lr, old *corev1.LimitRange) field.ErrorList {
	return append(validateObjectMetaUpdate(&lr.ObjectMeta, &old.ObjectMeta), validateLimitRange(lr)...)
}
