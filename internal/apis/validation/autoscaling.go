package validation

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	maxPeriodSeconds              = 1800
	maxStabilizationWindowSeconds = 3600
)

var (
	supportedMetricSourceTypes = []autoscalingv2.MetricSourceType{
		autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType,
		autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
	}
	supportedSelectPolicies = []autoscalingv2.ScalingPolicySelect{
		autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect,
	}
	supportedScalingPolicyTypes = []autoscalingv2.HPAScalingPolicyType{autoscalingv2.PercentScalingPolicy, autoscalingv2.PodsScalingPolicy}
)

func validateHPA(hpa *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	allErrs := validateObjectMeta(&hpa.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validateHPASpec(&hpa.Spec)...)
}

func validateHPAUpdate(hpa, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	return append(validateObjectMetaUpdate(&hpa.ObjectMeta, &old.ObjectMeta), validateHPASpec(&hpa.Spec)...)
}

// validateHPASpec checks an HPA spec; minReplicas must be at least 1
// (scaling to zero is an alpha feature upstream).
func validateHPASpec(spec *autoscalingv2.HorizontalPodAutoscalerSpec) field.ErrorList {
	var allErrs field.ErrorList
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		allErrs = append(allErrs, field.Invalid(specPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	allErrs = append(allErrs, validateCrossVersionObjectReference(spec.ScaleTargetRef, specPath.Child("scaleTargetRef"))...)
	for i, m := range spec.Metrics {
		allErrs = append(allErrs, validateMetricSpec(m, specPath.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		allErrs = append(allErrs, validateScalingRules(b.ScaleUp, specPath.Child("behavior", "scaleUp"))...)
		allErrs = append(allErrs, validateScalingRules(b.ScaleDown, specPath.Child("behavior", "scaleDown"))...)
	}
	return allErrs
}

func validateCrossVersionObjectReference(ref autoscalingv2.CrossVersionObjectReference, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if ref.Kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), ""))
	} else {
		allErrs = append(allErrs, pathSegment(ref.Kind, fldPath.Child("kind"))...)
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else {
		allErrs = append(allErrs, pathSegment(ref.Name, fldPath.Child("name"))...)
	}
	return allErrs
}

// validateMetricSpec requires the source named by type, and only it.
func validateMetricSpec(m autoscalingv2.MetricSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if m.Type == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must specify a metric source type"))
	}
	present := map[string]bool{}
	if m.Object != nil {
		present["object"] = true
	}
	if m.Pods != nil {
		present["pods"] = true
	}
	if m.Resource != nil {
		present["resource"] = true
	}
	if m.ContainerResource != nil {
		present["containerResource"] = true
	}
	if m.External != nil {
		present["external"] = true
	}
	if len(present) == 1 {
		switch {
		case m.Object != nil:
			allErrs = append(allErrs, validateObjectMetricSource(m.Object, fldPath.Child("object"))...)
		case m.Pods != nil:
			allErrs = append(allErrs, validatePodsMetricSource(m.Pods, fldPath.Child("pods"))...)
		case m.Resource != nil:
			allErrs = append(allErrs, validateResourceMetricTarget(string(m.Resource.Name), m.Resource.Target, fldPath.Child("resource"))...)
		case m.ContainerResource != nil:
			p := fldPath.Child("containerResource")
			if m.ContainerResource.Container == "" {
				allErrs = append(allErrs, field.Required(p.Child("container"), "must populate container name"))
			} else {
				allErrs = append(allErrs, dnsLabel(m.ContainerResource.Container, p.Child("container"))...)
			}
			allErrs = append(allErrs, validateResourceMetricTarget(string(m.ContainerResource.Name), m.ContainerResource.Target, p)...)
		case m.External != nil:
			allErrs = append(allErrs, validateExternalMetricSource(m.External, fldPath.Child("external"))...)
		}
	}
	expected := ""
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		expected = "object"
	case autoscalingv2.PodsMetricSourceType:
		expected = "pods"
	case autoscalingv2.ResourceMetricSourceType:
		expected = "resource"
	case autoscalingv2.ContainerResourceMetricSourceType:
		expected = "containerResource"
	case autoscalingv2.ExternalMetricSourceType:
		expected = "external"
	default:
		if m.Type != "" {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), m.Type, supportedMetricSourceTypes))
		}
	}
	if expected != "" && !present[expected] {
		allErrs = append(allErrs, field.Required(fldPath.Child(expected), "must populate information for the given metric source"))
	}
	if len(present) != 1 {
		for _, name := range []string{"object", "pods", "resource", "containerResource", "external"} {
			if present[name] && name != expected {
				allErrs = append(allErrs, field.Forbidden(fldPath.Child(name), "must populate the given metric source only"))
			}
		}
	}
	return allErrs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if id.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "must specify a metric name"))
	} else {
		allErrs = append(allErrs, pathSegment(id.Name, fldPath.Child("name"))...)
	}
	if id.Selector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(id.Selector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	return allErrs
}

func validateMetricTarget(t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch t.Type {
	case autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType:
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must specify a metric target type"))
		fallthrough
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("value"), t.Value.String(), "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageValue"), t.AverageValue.String(), "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return allErrs
}

func validateObjectMetricSource(s *autoscalingv2.ObjectMetricSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateCrossVersionObjectReference(s.DescribedObject, fldPath.Child("describedObject"))
	allErrs = append(allErrs, validateMetricIdentifier(s.Metric, fldPath.Child("metric"))...)
	allErrs = append(allErrs, validateMetricTarget(s.Target, fldPath.Child("target"))...)
	if s.Target.Value == nil && s.Target.AverageValue == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("target", "averageValue"), "must set either a target value or averageValue"))
	}
	return allErrs
}

func validatePodsMetricSource(s *autoscalingv2.PodsMetricSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateMetricIdentifier(s.Metric, fldPath.Child("metric"))
	allErrs = append(allErrs, validateMetricTarget(s.Target, fldPath.Child("target"))...)
	if s.Target.AverageValue == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("target", "averageValue"), "must specify a positive target averageValue"))
	}
	return allErrs
}

func validateResourceMetricTarget(name string, t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "must specify a resource name"))
	} else {
		allErrs = append(allErrs, qualifiedName(name, fldPath.Child("name"))...)
	}
	allErrs = append(allErrs, validateMetricTarget(t, fldPath.Child("target"))...)
	if t.AverageUtilization == nil && t.AverageValue == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("target", "averageUtilization"), "must set either a target raw value or a target utilization"))
	}
	if t.AverageUtilization != nil && t.AverageValue != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("target", "averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return allErrs
}

func validateExternalMetricSource(s *autoscalingv2.ExternalMetricSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateMetricIdentifier(s.Metric, fldPath.Child("metric"))
	allErrs = append(allErrs, validateMetricTarget(s.Target, fldPath.Child("target"))...)
	if s.Target.Value == nil && s.Target.AverageValue == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("target", "averageValue"), "must set either a target value for metric or a per-pod target"))
	}
	if s.Target.Value != nil && s.Target.AverageValue != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("target", "value"), "may not set both a target value for metric and a per-pod target"))
	}
	return allErrs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w, "must be greater than or equal to zero"))
		}
		if *w > maxStabilizationWindowSeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w,
				fmt.Sprintf("must be less than or equal to %v", maxStabilizationWindowSeconds)))
		}
	}
	if sp := r.SelectPolicy; sp != nil {
		allErrs = append(allErrs, oneOf(*sp, supportedSelectPolicies, fldPath.Child("selectPolicy"))...)
	}
	policiesPath := fldPath.Child("policies")
	if len(r.Policies) == 0 {
		allErrs = append(allErrs, field.Required(policiesPath, "must specify at least one Policy"))
	}
	for i, p := range r.Policies {
		pp := policiesPath.Index(i)
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			allErrs = append(allErrs, field.NotSupported(pp.Child("type"), p.Type, supportedScalingPolicyTypes))
		}
		if p.Value <= 0 {
			allErrs = append(allErrs, field.Invalid(pp.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, "must be greater than zero"))
		}
		if p.PeriodSeconds > maxPeriodSeconds {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds,
				fmt.Sprintf("must be less than or equal to %v", maxPeriodSeconds)))
		}
	}
	if t := r.Tolerance; t != nil && t.Sign() < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("tolerance"), t.String(), "must be greater than or equal to zero"))
	}
	return allErrs
}
