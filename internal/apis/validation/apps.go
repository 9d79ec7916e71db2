package validation

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const selectorMismatch = "`selector` does not match template `labels`"

// validateWorkloadSelector requires a non-empty, valid selector that
// matches the template labels. kind names the resource in the empty
// selector message ("empty selector is invalid for deployment").
func validateWorkloadSelector(selector *metav1.LabelSelector, template *corev1.PodTemplateSpec, kind string, fldPath *field.Path) field.ErrorList {
	selPath := fldPath.Child("selector")
	if selector == nil {
		// A missing selector matches nothing, so upstream also reports the
		// template labels as unmatched.
		return field.ErrorList{
			field.Required(selPath, ""),
			field.Invalid(fldPath.Child("template", "metadata", "labels"), template.Labels, selectorMismatch),
		}
	}
	allErrs := metav1validation.ValidateLabelSelector(selector, metav1validation.LabelSelectorValidationOptions{}, selPath)
	if len(selector.MatchLabels)+len(selector.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(selPath, selector, "empty selector is invalid for "+kind))
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return append(allErrs, field.Invalid(selPath, selector, "invalid label selector"))
	}
	if !sel.Empty() && !sel.Matches(labels.Set(template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), template.Labels, selectorMismatch))
	}
	return allErrs
}

// validateReplicatedTemplate checks a template whose pods are restarted
// forever: restartPolicy must be Always and activeDeadlineSeconds unset.
func validateReplicatedTemplate(t *corev1.PodTemplateSpec, fldPath *field.Path, deadlineErr func(*field.Path, *int64) *field.Error) field.ErrorList {
	allErrs := validatePodTemplateSpec(t, fldPath)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, deadlineErr(fldPath.Child("spec", "activeDeadlineSeconds"), t.Spec.ActiveDeadlineSeconds))
	}
	return allErrs
}

func replicaSetDeadlineErr(p *field.Path, _ *int64) *field.Error {
	return field.Forbidden(p, "activeDeadlineSeconds in ReplicaSet is not Supported")
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validateDeploymentSpec(&d.Spec)...)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec) field.ErrorList {
	allErrs := nonNegativePtr(spec.Replicas, specPath.Child("replicas"))
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, &spec.Template, "deployment", specPath)...)
	allErrs = append(allErrs, validateReplicatedTemplate(&spec.Template, specPath.Child("template"), replicaSetDeadlineErr)...)
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, specPath.Child("strategy"))...)
	allErrs = append(allErrs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if pds := spec.ProgressDeadlineSeconds; pds != nil {
		allErrs = append(allErrs, nonNegative(int64(*pds), specPath.Child("progressDeadlineSeconds"))...)
		if *pds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(specPath.Child("progressDeadlineSeconds"), *pds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

var supportedDeploymentStrategies = []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("rollingUpdate"),
				fmt.Sprintf("may not be specified when strategy `type` is '%s'", appsv1.RecreateDeploymentStrategyType))}
		}
		return nil
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		return validateRollingUpdateDeployment(s.RollingUpdate, fldPath.Child("rollingUpdate"))
	}
	return field.ErrorList{field.NotSupported(fldPath, s.Type, supportedDeploymentStrategies)}
}

func validateRollingUpdateDeployment(ru *appsv1.RollingUpdateDeployment, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	unavailablePath := fldPath.Child("maxUnavailable")
	if ru.MaxUnavailable != nil {
		allErrs = append(allErrs, intOrPercent(*ru.MaxUnavailable, unavailablePath)...)
		allErrs = append(allErrs, notMoreThan100Percent(*ru.MaxUnavailable, unavailablePath)...)
	}
	if ru.MaxSurge != nil {
		allErrs = append(allErrs, intOrPercent(*ru.MaxSurge, fldPath.Child("maxSurge"))...)
	}
	if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
		var bad any = 0
		if ru.MaxUnavailable != nil {
			bad = *ru.MaxUnavailable
		}
		allErrs = append(allErrs, field.Invalid(unavailablePath, bad, "may not be 0 when `maxSurge` is 0"))
	}
	return allErrs
}

func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateDeploymentSpec(&d.Spec)...)
	return append(allErrs, immutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validateReplicaSetSpec(&rs.Spec)...)
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec) field.ErrorList {
	allErrs := nonNegativePtr(spec.Replicas, specPath.Child("replicas"))
	allErrs = append(allErrs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, &spec.Template, "deployment", specPath)...)
	return append(allErrs, validateReplicatedTemplate(&spec.Template, specPath.Child("template"), replicaSetDeadlineErr)...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateReplicaSetSpec(&rs.Spec)...)
	return append(allErrs, immutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

// validateStatefulSet checks a StatefulSet. Its name is a DNS label as it
// becomes part of pod hostnames.
func validateStatefulSet(s *appsv1.StatefulSet) field.ErrorList {
	allErrs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSLabel)
	return append(allErrs, validateStatefulSetSpec(&s.Spec)...)
}

var retentionPolicies = []appsv1.PersistentVolumeClaimRetentionPolicyType{
	appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
}

func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		allErrs = append(allErrs, field.Required(specPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		allErrs = append(allErrs, field.Invalid(specPath.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	strategyPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case "":
		allErrs = append(allErrs, field.Required(strategyPath, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(strategyPath.Child("rollingUpdate"), spec.UpdateStrategy.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			allErrs = append(allErrs, nonNegativePtr(ru.Partition, strategyPath.Child("rollingUpdate", "partition"))...)
			if ru.MaxUnavailable != nil {
				p := strategyPath.Child("rollingUpdate", "maxUnavailable")
				allErrs = append(allErrs, intOrPercent(*ru.MaxUnavailable, p)...)
				if intOrPercentValue(ru.MaxUnavailable) == 0 {
					allErrs = append(allErrs, field.Invalid(p, *ru.MaxUnavailable, "cannot be 0"))
				}
				allErrs = append(allErrs, notMoreThan100Percent(*ru.MaxUnavailable, p)...)
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(strategyPath, spec.UpdateStrategy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		pp := specPath.Child("persistentVolumeClaimRetentionPolicy")
		allErrs = append(allErrs, oneOf(p.WhenDeleted, retentionPolicies, pp.Child("whenDeleted"))...)
		allErrs = append(allErrs, oneOf(p.WhenScaled, retentionPolicies, pp.Child("whenScaled"))...)
	}
	allErrs = append(allErrs, nonNegativePtr(spec.Replicas, specPath.Child("replicas"))...)
	allErrs = append(allErrs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if spec.Ordinals != nil {
		allErrs = append(allErrs, nonNegative(int64(spec.Ordinals.Start), specPath.Child("ordinals", "start"))...)
	}
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, &spec.Template, "statefulset", specPath)...)
	// Containers may mount the claims the StatefulSet creates per pod, so
	// the template is checked as if they were volumes. (Upstream skips
	// checking StatefulSet pod specs for this reason; Skiff checks them.)
	template := spec.Template.DeepCopy()
	for _, claim := range spec.VolumeClaimTemplates {
		template.Spec.Volumes = append(template.Spec.Volumes, corev1.Volume{
			Name:         claim.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name}},
		})
	}
	templateErrs := validateReplicatedTemplate(template, specPath.Child("template"), func(p *field.Path, _ *int64) *field.Error {
		return field.Forbidden(p, "activeDeadlineSeconds in StatefulSet is not Supported")
	})
	// Errors about the stand-in volumes would point past the user's list.
	for _, err := range templateErrs {
		if !isStandInVolume(err.Field, len(spec.Template.Spec.Volumes), len(template.Spec.Volumes)) {
			allErrs = append(allErrs, err)
		}
	}
	for i := range spec.VolumeClaimTemplates {
		t := &spec.VolumeClaimTemplates[i]
		p := specPath.Child("volumeClaimTemplates").Index(i)
		allErrs = append(allErrs, metav1validation.ValidateLabels(t.Labels, p.Child("metadata", "labels"))...)
		allErrs = append(allErrs, validateAnnotations(t.Annotations, p.Child("metadata", "annotations"))...)
		allErrs = append(allErrs, validatePVCSpec(&t.Spec, p.Child("spec"))...)
	}
	return allErrs
}

func isStandInVolume(fieldPath string, from, to int) bool {
	volumes := specPath.Child("template", "spec", "volumes")
	for i := from; i < to; i++ {
		if strings.HasPrefix(fieldPath, volumes.Index(i).String()) {
			return true
		}
	}
	return false
}

// validateStatefulSetUpdate allows changing only replicas, ordinals,
// template, updateStrategy, the PVC retention policy and minReadySeconds.
func validateStatefulSetUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateStatefulSetSpec(&s.Spec)...)
	rest := s.Spec.DeepCopy()
	rest.Replicas = old.Spec.Replicas
	rest.Ordinals = old.Spec.Ordinals
	rest.Template = old.Spec.Template
	rest.UpdateStrategy = old.Spec.UpdateStrategy
	rest.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	rest.MinReadySeconds = old.Spec.MinReadySeconds
	if !apiequality.Semantic.DeepEqual(*rest, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(specPath, "updates to statefulset spec for fields other than 'replicas', 'ordinals', "+
			"'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return allErrs
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	allErrs := validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validateDaemonSetSpec(&ds.Spec)...)
}

var supportedDaemonSetStrategies = []appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec) field.ErrorList {
	allErrs := validateWorkloadSelector(spec.Selector, &spec.Template, "daemonset", specPath)
	allErrs = append(allErrs, validateReplicatedTemplate(&spec.Template, specPath.Child("template"), func(p *field.Path, v *int64) *field.Error {
		return field.Invalid(p, *v, "activeDeadlineSeconds must be nil for daemonset")
	})...)
	allErrs = append(allErrs, nonNegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	strategyPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		ru := spec.UpdateStrategy.RollingUpdate
		if ru == nil {
			allErrs = append(allErrs, field.Required(strategyPath.Child("rollingUpdate"), ""))
			break
		}
		allErrs = append(allErrs, validateRollingUpdateDaemonSet(ru, strategyPath.Child("rollingUpdate"))...)
	default:
		allErrs = append(allErrs, field.NotSupported(strategyPath, spec.UpdateStrategy.Type, supportedDaemonSetStrategies))
	}
	return allErrs
}

// validateRollingUpdateDaemonSet requires exactly one of maxUnavailable and
// maxSurge to be non-zero.
func validateRollingUpdateDaemonSet(ru *appsv1.RollingUpdateDaemonSet, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range []struct {
		name string
		v    *intstr.IntOrString
	}{{"maxUnavailable", ru.MaxUnavailable}, {"maxSurge", ru.MaxSurge}} {
		if f.v != nil {
			allErrs = append(allErrs, intOrPercent(*f.v, fldPath.Child(f.name))...)
			allErrs = append(allErrs, notMoreThan100Percent(*f.v, fldPath.Child(f.name))...)
		}
	}
	hasUnavailable := intOrPercentValue(ru.MaxUnavailable) != 0
	hasSurge := intOrPercentValue(ru.MaxSurge) != 0
	switch {
	case hasUnavailable && hasSurge:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case !hasUnavailable && !hasSurge:
		allErrs = append(allErrs, field.Required(fldPath.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return allErrs
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateDaemonSetSpec(&ds.Spec)...)
	return append(allErrs, immutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}
