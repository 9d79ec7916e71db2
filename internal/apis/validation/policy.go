package validation

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedUnhealthyPodEvictionPolicies = []policyv1.UnhealthyPodEvictionPolicyType{policyv1.AlwaysAllow, policyv1.IfHealthyBudget}

func validatePodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	allErrs := validateObjectMeta(&pdb.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &pdb.Spec
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		allErrs = append(allErrs, field.Invalid(specPath, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if v := spec.MinAvailable; v != nil {
		allErrs = append(allErrs, intOrPercent(*v, specPath.Child("minAvailable"))...)
		allErrs = append(allErrs, notMoreThan100Percent(*v, specPath.Child("minAvailable"))...)
	}
	if v := spec.MaxUnavailable; v != nil {
		allErrs = append(allErrs, intOrPercent(*v, specPath.Child("maxUnavailable"))...)
		allErrs = append(allErrs, notMoreThan100Percent(*v, specPath.Child("maxUnavailable"))...)
	}
	allErrs = append(allErrs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	if p := spec.UnhealthyPodEvictionPolicy; p != nil {
		allErrs = append(allErrs, oneOf(*p, supportedUnhealthyPodEvictionPolicies, specPath.Child("unhealthyPodEvictionPolicy"))...)
	}
	return allErrs
}

func validatePodDisruptionBudgetUpdate(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
	return append(validateObjectMetaUpdate(&pdb.ObjectMeta, &old.ObjectMeta), validatePodDisruptionBudget(pdb)...)
}
