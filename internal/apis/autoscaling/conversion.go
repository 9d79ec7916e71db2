package autoscaling

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Annotations carrying, on the autoscaling/v1 form, what v1 cannot express.
// The keys and encodings are upstream's.
const (
	// MetricSpecsAnnotation holds the metrics other than a CPU utilization
	// target, as a JSON list of autoscaling/v1 MetricSpec.
	MetricSpecsAnnotation = "autoscaling.alpha.kubernetes.io/metrics"
	// MetricStatusesAnnotation holds status.currentMetrics, as a JSON list of
	// autoscaling/v1 MetricStatus.
	MetricStatusesAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	// ConditionsAnnotation holds status.conditions, as a JSON list of
	// autoscaling/v1 HorizontalPodAutoscalerCondition.
	ConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions"
	// BehaviorSpecsAnnotation holds spec.behavior in the JSON shape of
	// upstream's internal type: Go field names as keys.
	BehaviorSpecsAnnotation = "autoscaling.alpha.kubernetes.io/behavior"
	// ToleranceScaleDownAnnotation and ToleranceScaleUpAnnotation are used by
	// upstream's beta versions; they are only ever dropped here.
	ToleranceScaleDownAnnotation = "autoscaling.alpha.kubernetes.io/scale-down-tolerance"
	ToleranceScaleUpAnnotation   = "autoscaling.alpha.kubernetes.io/scale-up-tolerance"
)

var roundTripAnnotations = []string{
	MetricSpecsAnnotation,
	MetricStatusesAnnotation,
	ConditionsAnnotation,
	BehaviorSpecsAnnotation,
	ToleranceScaleDownAnnotation,
	ToleranceScaleUpAnnotation,
}

// defaultCPUUtilization is what a v1 object without a CPU target means.
const defaultCPUUtilization int32 = 80

// V2ToV1 converts a stored HorizontalPodAutoscaler to its autoscaling/v1
// form. The input is not modified.
func V2ToV1(in *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv1.HorizontalPodAutoscaler {
	if in == nil {
		return nil
	}
	out := &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
	}
	out.Annotations = withoutRoundTripAnnotations(out.Annotations)

	spec := in.Spec.DeepCopy()
	out.Spec = autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference(spec.ScaleTargetRef),
		MinReplicas:    spec.MinReplicas,
		MaxReplicas:    spec.MaxReplicas,
	}
	var others []autoscalingv1.MetricSpec
	foundCPU := false
	for _, m := range spec.Metrics {
		isCPU := m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		if isCPU && !foundCPU {
			// Like upstream, only the first CPU metric can become the v1 target.
			foundCPU = true
			out.Spec.TargetCPUUtilizationPercentage = m.Resource.Target.AverageUtilization
		}
		if isCPU && m.Resource.Target.AverageUtilization != nil {
			continue
		}
		others = append(others, metricSpecToV1(m))
	}

	status := in.Status.DeepCopy()
	out.Status = autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration: status.ObservedGeneration,
		LastScaleTime:      status.LastScaleTime,
		CurrentReplicas:    status.CurrentReplicas,
		DesiredReplicas:    status.DesiredReplicas,
	}
	current := make([]autoscalingv1.MetricStatus, 0, len(status.CurrentMetrics))
	for _, m := range status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
			m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			out.Status.CurrentCPUUtilizationPercentage = ptr.To(*m.Resource.Current.AverageUtilization)
		}
		current = append(current, metricStatusToV1(m))
	}
	conditions := make([]autoscalingv1.HorizontalPodAutoscalerCondition, 0, len(status.Conditions))
	for _, c := range status.Conditions {
		conditions = append(conditions, autoscalingv1.HorizontalPodAutoscalerCondition{
			Type:               autoscalingv1.HorizontalPodAutoscalerConditionType(c.Type),
			Status:             c.Status,
			LastTransitionTime: c.LastTransitionTime,
			Reason:             c.Reason,
			Message:            c.Message,
			ObservedGeneration: c.ObservedGeneration,
		})
	}

	if len(others) > 0 {
		setJSONAnnotation(&out.ObjectMeta, MetricSpecsAnnotation, others)
	}
	if len(current) > 0 {
		setJSONAnnotation(&out.ObjectMeta, MetricStatusesAnnotation, current)
	}
	if spec.Behavior != nil {
		setJSONAnnotation(&out.ObjectMeta, BehaviorSpecsAnnotation, behaviorToAnnotation(spec.Behavior))
	}
	if len(conditions) > 0 {
		setJSONAnnotation(&out.ObjectMeta, ConditionsAnnotation, conditions)
	}
	return out
}

// V1ToV2 converts an autoscaling/v1 HorizontalPodAutoscaler to the stored
// form, restoring what the round-trip annotations carry and dropping them.
// Annotations that do not parse are ignored, as upstream ignores them. The
// input is not modified.
func V1ToV2(in *autoscalingv1.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	if in == nil {
		return nil
	}
	out := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
	}
	annotations := in.Annotations

	spec := in.Spec.DeepCopy()
	out.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference(spec.ScaleTargetRef),
		MinReplicas:    spec.MinReplicas,
		MaxReplicas:    spec.MaxReplicas,
	}
	var metrics []autoscalingv2.MetricSpec
	var others []autoscalingv1.MetricSpec
	if unmarshalAnnotation(annotations, MetricSpecsAnnotation, &others) {
		for _, m := range others {
			metrics = append(metrics, metricSpecToV2(m))
		}
	}
	if spec.TargetCPUUtilizationPercentage != nil {
		metrics = append(metrics, cpuUtilizationMetric(*spec.TargetCPUUtilizationPercentage))
	}
	if len(metrics) == 0 {
		// v1 always meant "80% CPU" when nothing was said.
		metrics = append(metrics, cpuUtilizationMetric(defaultCPUUtilization))
	}
	out.Spec.Metrics = metrics
	var behavior behaviorAnnotation
	if unmarshalAnnotation(annotations, BehaviorSpecsAnnotation, &behavior) && (behavior.ScaleUp != nil || behavior.ScaleDown != nil) {
		out.Spec.Behavior = behaviorFromAnnotation(&behavior)
	}

	status := in.Status.DeepCopy()
	out.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: status.ObservedGeneration,
		LastScaleTime:      status.LastScaleTime,
		CurrentReplicas:    status.CurrentReplicas,
		DesiredReplicas:    status.DesiredReplicas,
	}
	if status.CurrentCPUUtilizationPercentage != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: status.CurrentCPUUtilizationPercentage},
			},
		}}
	}
	var current []autoscalingv1.MetricStatus
	if unmarshalAnnotation(annotations, MetricStatusesAnnotation, &current) {
		// The annotation is richer than currentCPUUtilizationPercentage.
		out.Status.CurrentMetrics = make([]autoscalingv2.MetricStatus, 0, len(current))
		for _, m := range current {
			out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, metricStatusToV2(m))
		}
	}
	var conditions []autoscalingv1.HorizontalPodAutoscalerCondition
	if unmarshalAnnotation(annotations, ConditionsAnnotation, &conditions) {
		for _, c := range conditions {
			out.Status.Conditions = append(out.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
				Type:               autoscalingv2.HorizontalPodAutoscalerConditionType(c.Type),
				Status:             c.Status,
				LastTransitionTime: c.LastTransitionTime,
				Reason:             c.Reason,
				Message:            c.Message,
				ObservedGeneration: c.ObservedGeneration,
			})
		}
	}

	out.Annotations = withoutRoundTripAnnotations(out.Annotations)
	return out
}
