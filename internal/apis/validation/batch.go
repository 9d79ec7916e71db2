package validation

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // CronJob time zones must resolve on hosts without a zoneinfo database.

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// maxParallelismForIndexedJob bounds parallelism of Indexed Jobs.
	maxParallelismForIndexedJob = 100000
	// maxCronJobNameLength leaves room for the 11-character suffix the
	// CronJob controller appends to name its Jobs (63 - 11).
	maxCronJobNameLength = 52
)

// The unprefixed Job label keys; k8s.io/api exports only the
// batch.kubernetes.io ones.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

func validateJob(job *batchv1.Job) field.ErrorList {
	allErrs := validateObjectMeta(&job.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, validateGeneratedSelector(job)...)
	allErrs = append(allErrs, validateJobSpec(&job.Spec, specPath)...)
	if m := job.Spec.CompletionMode; m != nil && *m == batchv1.IndexedCompletion && job.Spec.Completions != nil && *job.Spec.Completions > 0 {
		// Pod hostnames get "-<index>" appended.
		hostname := fmt.Sprintf("%s-%d", job.Name, *job.Spec.Completions-1)
		if errs := utilvalidation.IsDNS1123Label(hostname); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(metadataPath.Child("name"), job.Name,
				fmt.Sprintf("will not able to create pod with invalid DNS label: %s", hostname)))
		}
	}
	return allErrs
}

// validateGeneratedSelector checks, for Jobs whose selector the server
// generates, that the template carries the generated labels and the
// selector selects them. It applies once the Job has a UID.
func validateGeneratedSelector(job *batchv1.Job) field.ErrorList {
	if (job.Spec.ManualSelector != nil && *job.Spec.ManualSelector) || job.UID == "" || job.Spec.Template.Labels == nil {
		return nil
	}
	var allErrs field.ErrorList
	metaPath := specPath.Child("template", "metadata")
	expected := map[string]string{
		legacyControllerUIDLabel:   string(job.UID),
		legacyJobNameLabel:         job.Name,
		batchv1.ControllerUidLabel: string(job.UID),
		batchv1.JobNameLabel:       job.Name,
	}
	for _, k := range []string{legacyControllerUIDLabel, legacyJobNameLabel, batchv1.ControllerUidLabel, batchv1.JobNameLabel} {
		want := expected[k]
		got, ok := job.Spec.Template.Labels[k]
		switch {
		case !ok:
			allErrs = append(allErrs, field.Required(metaPath.Child("labels").Key(k), fmt.Sprintf("must be '%s'", want)))
		case got != want:
			allErrs = append(allErrs, field.Invalid(metaPath.Child("labels").Key(k), job.Spec.Template.Labels, fmt.Sprintf("must be '%s'", want)))
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(labels.Set(expected)) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return allErrs
}

// validateJobSpec checks a Job's spec: the template-level rules plus a
// required selector matching the template labels.
func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateJobTemplateLevel(spec, fldPath)
	if spec.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, selectorMismatch))
	}
	return allErrs
}

var (
	supportedCompletionModes        = []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}
	supportedPodReplacementPolicies = []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}
)

// validateJobTemplateLevel holds the checks shared by Jobs and CronJob job
// templates.
func validateJobTemplateLevel(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, nonNegativePtr(spec.Parallelism, fldPath.Child("parallelism"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.Completions, fldPath.Child("completions"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.BackoffLimit, fldPath.Child("backoffLimit"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.TTLSecondsAfterFinished, fldPath.Child("ttlSecondsAfterFinished"))...)
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if spec.BackoffLimitPerIndex != nil {
		allErrs = append(allErrs, nonNegativePtr(spec.BackoffLimitPerIndex, fldPath.Child("backoffLimitPerIndex"))...)
		if !indexed {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
		}
	}
	if spec.MaxFailedIndexes != nil {
		allErrs = append(allErrs, nonNegativePtr(spec.MaxFailedIndexes, fldPath.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
	}
	if spec.CompletionMode != nil {
		m := *spec.CompletionMode
		if m != batchv1.NonIndexedCompletion && m != batchv1.IndexedCompletion {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("completionMode"), m, supportedCompletionModes))
		}
		if indexed {
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
			if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("parallelism"), *spec.Parallelism,
					fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
			}
		}
	}
	if p := spec.PodReplacementPolicy; p != nil {
		if spec.PodFailurePolicy != nil {
			if *p != batchv1.Failed {
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *p, []batchv1.PodReplacementPolicy{batchv1.Failed}))
			}
		} else if *p != batchv1.Failed && *p != batchv1.TerminatingOrFailed {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *p, supportedPodReplacementPolicies))
		}
	}
	allErrs = append(allErrs, validatePodFailurePolicy(spec, fldPath.Child("podFailurePolicy"))...)
	restartPath := fldPath.Child("template", "spec", "restartPolicy")
	for _, err := range validatePodTemplateSpec(&spec.Template, fldPath.Child("template")) {
		// Job templates keep an empty restartPolicy (see defaults); the
		// Job-specific message below says what is missing.
		if err.Type == field.ErrorTypeRequired && err.Field == restartPath.String() {
			continue
		}
		allErrs = append(allErrs, err)
	}
	switch rp := spec.Template.Spec.RestartPolicy; {
	case rp == corev1.RestartPolicyAlways || rp == "":
		allErrs = append(allErrs, field.Required(restartPath, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		allErrs = append(allErrs, field.NotSupported(restartPath, rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case spec.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever:
		allErrs = append(allErrs, field.Invalid(restartPath, rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return allErrs
}

const maxPodFailurePolicyRules = 20

var (
	supportedPodFailureActions = []batchv1.PodFailurePolicyAction{
		batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex,
		batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore,
	}
	supportedExitCodeOperators = []batchv1.PodFailurePolicyOnExitCodesOperator{
		batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn,
	}
)

func validatePodFailurePolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	pfp := spec.PodFailurePolicy
	if pfp == nil {
		return nil
	}
	var allErrs field.ErrorList
	rulesPath := fldPath.Child("rules")
	if len(pfp.Rules) > maxPodFailurePolicyRules {
		allErrs = append(allErrs, field.TooMany(rulesPath, len(pfp.Rules), maxPodFailurePolicyRules))
	}
	for i, rule := range pfp.Rules {
		p := rulesPath.Index(i)
		allErrs = append(allErrs, oneOf(rule.Action, supportedPodFailureActions, p.Child("action"))...)
		if rule.OnExitCodes != nil && len(rule.OnPodConditions) > 0 {
			allErrs = append(allErrs, field.Invalid(p, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		} else if rule.OnExitCodes == nil && len(rule.OnPodConditions) == 0 {
			allErrs = append(allErrs, field.Invalid(p, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
		if ec := rule.OnExitCodes; ec != nil {
			ep := p.Child("onExitCodes")
			allErrs = append(allErrs, oneOf(ec.Operator, supportedExitCodeOperators, ep.Child("operator"))...)
			if len(ec.Values) == 0 {
				allErrs = append(allErrs, field.Invalid(ep.Child("values"), ec.Values, "at least one value is required"))
			}
			for j, v := range ec.Values {
				if ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0 {
					allErrs = append(allErrs, field.Invalid(ep.Child("values").Index(j), v, "must not be 0 for the In operator"))
				}
				if j > 0 && ec.Values[j-1] >= v {
					allErrs = append(allErrs, field.Invalid(ep.Child("values").Index(j), v, "must be ordered"))
				}
			}
		}
		for j, c := range rule.OnPodConditions {
			cp := p.Child("onPodConditions").Index(j)
			allErrs = append(allErrs, oneOf(c.Status, []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}, cp.Child("status"))...)
			allErrs = append(allErrs, qualifiedName(string(c.Type), cp.Child("type"))...)
		}
	}
	return allErrs
}

// validateJobUpdate keeps the selector, template, completion mode and
// failure policies fixed. The template of a suspended Job that never ran
// may still change its scheduling directives, labels and annotations;
// completions of an Indexed Job may change together with parallelism.
func validateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateGeneratedSelector(job)...)
	allErrs = append(allErrs, validateJobSpec(&job.Spec, specPath)...)
	spec, oldSpec := &job.Spec, &old.Spec

	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if !indexed {
		allErrs = append(allErrs, immutable(spec.Completions, oldSpec.Completions, specPath.Child("completions"))...)
	} else if !apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) && spec.Completions != nil &&
		(spec.Parallelism == nil || *spec.Completions != *spec.Parallelism) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("completions"), spec.Completions,
			fmt.Sprintf("can only be modified in tandem with %s", specPath.Child("parallelism"))))
	}
	allErrs = append(allErrs, immutable(spec.Selector, oldSpec.Selector, specPath.Child("selector"))...)

	oldTemplate := oldSpec.Template.DeepCopy()
	if oldSpec.Suspend != nil && *oldSpec.Suspend && old.Status.StartTime == nil {
		t := &spec.Template
		switch {
		case t.Spec.Affinity == nil && oldTemplate.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = nil
			if apiequality.Semantic.DeepEqual(*oldTemplate.Spec.Affinity, corev1.Affinity{}) {
				oldTemplate.Spec.Affinity = nil
			}
		case t.Spec.Affinity != nil && oldTemplate.Spec.Affinity == nil:
			oldTemplate.Spec.Affinity = &corev1.Affinity{NodeAffinity: t.Spec.Affinity.NodeAffinity}
		case t.Spec.Affinity != nil && oldTemplate.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = t.Spec.Affinity.NodeAffinity
		}
		oldTemplate.Spec.NodeSelector = t.Spec.NodeSelector
		oldTemplate.Spec.Tolerations = t.Spec.Tolerations
		oldTemplate.Annotations = t.Annotations
		oldTemplate.Labels = t.Labels
		oldTemplate.Spec.SchedulingGates = t.Spec.SchedulingGates
	}
	allErrs = append(allErrs, immutable(&spec.Template, oldTemplate, specPath.Child("template"))...)
	allErrs = append(allErrs, immutable(spec.CompletionMode, oldSpec.CompletionMode, specPath.Child("completionMode"))...)
	allErrs = append(allErrs, immutable(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	allErrs = append(allErrs, immutable(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	allErrs = append(allErrs, immutable(spec.ManagedBy, oldSpec.ManagedBy, specPath.Child("managedBy"))...)
	allErrs = append(allErrs, immutable(spec.SuccessPolicy, oldSpec.SuccessPolicy, specPath.Child("successPolicy"))...)
	return allErrs
}

func validateCronJobCreate(cj *batchv1.CronJob) field.ErrorList {
	allErrs := validateObjectMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, validateCronJobSpec(&cj.Spec, nil)...)
	if len(cj.Name) > maxCronJobNameLength {
		allErrs = append(allErrs, field.Invalid(metadataPath.Child("name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	return allErrs
}

// validateCronJobUpdate skips the name length limit so that older CronJobs
// with long names can still be updated and deleted.
func validateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta)
	return append(allErrs, validateCronJobSpec(&cj.Spec, &old.Spec)...)
}

var supportedConcurrencyPolicies = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}

func validateCronJobSpec(spec, oldSpec *batchv1.CronJobSpec) field.ErrorList {
	var allErrs field.ErrorList
	schedulePath := specPath.Child("schedule")
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(schedulePath, ""))
	} else {
		if err := checkSchedule(spec.Schedule); err != nil {
			allErrs = append(allErrs, field.Invalid(schedulePath, spec.Schedule, err.Error()))
		}
		// A TZ in the schedule is tolerated only on objects that already had
		// one, and never together with the timeZone field.
		allowTZ := oldSpec != nil && strings.Contains(oldSpec.Schedule, "TZ")
		switch {
		case allowTZ && strings.Contains(spec.Schedule, "TZ") && spec.TimeZone != nil:
			allErrs = append(allErrs, field.Invalid(schedulePath, spec.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
		case !allowTZ && strings.Contains(spec.Schedule, "TZ"):
			allErrs = append(allErrs, field.Invalid(schedulePath, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	allErrs = append(allErrs, nonNegativePtr(spec.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	if oldSpec == nil || !equalStringPtr(oldSpec.TimeZone, spec.TimeZone) {
		allErrs = append(allErrs, validateTimeZone(spec.TimeZone, specPath.Child("timeZone"))...)
	}
	allErrs = append(allErrs, oneOf(spec.ConcurrencyPolicy, supportedConcurrencyPolicies, specPath.Child("concurrencyPolicy"))...)

	jobSpecPath := specPath.Child("jobTemplate", "spec")
	allErrs = append(allErrs, validateJobTemplateLevel(&spec.JobTemplate.Spec, jobSpecPath)...)
	if spec.JobTemplate.Spec.Selector != nil {
		allErrs = append(allErrs, field.Invalid(jobSpecPath.Child("selector"), spec.JobTemplate.Spec.Selector, "`selector` will be auto-generated"))
	}
	if ms := spec.JobTemplate.Spec.ManualSelector; ms != nil && *ms {
		allErrs = append(allErrs, field.NotSupported(jobSpecPath.Child("manualSelector"), *ms, []string{"nil", "false"}))
	}
	allErrs = append(allErrs, nonNegativePtr(spec.SuccessfulJobsHistoryLimit, specPath.Child("successfulJobsHistoryLimit"))...)
	allErrs = append(allErrs, nonNegativePtr(spec.FailedJobsHistoryLimit, specPath.Child("failedJobsHistoryLimit"))...)
	return allErrs
}

var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	var allErrs field.ErrorList
	if strings.EqualFold(*tz, "Local") {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, err.Error()))
	}
	return allErrs
}
