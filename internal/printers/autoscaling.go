package printers

import (
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// addAutoscalingPrinters registers the HPA printer over autoscaling/v2, the
// version Skiff stores; objects read through autoscaling/v1 are converted to
// it before printing.
func addAutoscalingPrinters(m map[schema.GroupKind]Printer) {
	m[schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}] = typed(hpaColumns(), hpaCells)
}

func hpaColumns() []metav1.TableColumnDefinition {
	spec, status := autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc(), autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Reference", "string", spec["scaleTargetRef"]),
		column("Targets", "string", spec["metrics"]),
		column("MinPods", "string", spec["minReplicas"]),
		column("MaxPods", "string", spec["maxReplicas"]),
		column("Replicas", "string", status["currentReplicas"]),
		ageColumn(),
	}
}

func hpaCells(h *autoscalingv2.HorizontalPodAutoscaler, now time.Time) []any {
	minPods := "<unset>"
	if h.Spec.MinReplicas != nil {
		minPods = fmt.Sprint(*h.Spec.MinReplicas)
	}
	return []any{
		h.Name,
		h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name,
		hpaTargets(h.Spec.Metrics, h.Status.CurrentMetrics),
		minPods,
		int64(h.Spec.MaxReplicas),
		int64(h.Status.CurrentReplicas),
		age(h.CreationTimestamp, now),
	}
}

// hpaTargets renders each metric as "current/target" ("cpu: 40%/50%",
// "<unknown>/50%" before the first measurement), pairing spec.metrics[i]
// with status.currentMetrics[i]; at most two are shown.
func hpaTargets(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	list := make([]string, 0, len(specs))
	for i, spec := range specs {
		var st autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = statuses[i]
		}
		list = append(list, hpaTarget(spec, st))
	}
	return firstN(list, 2, ", ")
}

// hpaTarget renders one metric; st is the zero value when there is no status
// for it yet.
func hpaTarget(spec autoscalingv2.MetricSpec, st autoscalingv2.MetricStatus) string {
	const unknown = "<unknown>"
	switch spec.Type {
	case autoscalingv2.ExternalMetricSourceType:
		if spec.External == nil {
			break
		}
		var current *autoscalingv2.MetricValueStatus
		if st.External != nil {
			current = &st.External.Current
		}
		return valueTarget(spec.External.Target, current)
	case autoscalingv2.ObjectMetricSourceType:
		if spec.Object == nil {
			break
		}
		var current *autoscalingv2.MetricValueStatus
		if st.Object != nil {
			current = &st.Object.Current
		}
		return valueTarget(spec.Object.Target, current)
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods == nil {
			break
		}
		current := unknown
		if st.Pods != nil {
			current = st.Pods.Current.AverageValue.String()
		}
		return current + "/" + spec.Pods.Target.AverageValue.String()
	case autoscalingv2.ResourceMetricSourceType:
		if spec.Resource == nil {
			break
		}
		var current *autoscalingv2.MetricValueStatus
		if st.Resource != nil {
			current = &st.Resource.Current
		}
		return resourceTarget(spec.Resource.Name, spec.Resource.Target, current)
	case autoscalingv2.ContainerResourceMetricSourceType:
		if spec.ContainerResource == nil {
			break
		}
		var current *autoscalingv2.MetricValueStatus
		if st.ContainerResource != nil {
			current = &st.ContainerResource.Current
		}
		return resourceTarget(spec.ContainerResource.Name, spec.ContainerResource.Target, current)
	}
	return "<unknown type>"
}

// valueTarget renders an Object or External metric: by average value when
// the target has one ("1k/500 (avg)"), else by total value. Unset
// quantities print as "<nil>", as upstream's do.
func valueTarget(target autoscalingv2.MetricTarget, current *autoscalingv2.MetricValueStatus) string {
	if target.AverageValue != nil {
		now := "<unknown>"
		if current != nil && current.AverageValue != nil {
			now = current.AverageValue.String()
		}
		return fmt.Sprintf("%s/%s (avg)", now, target.AverageValue.String())
	}
	now := "<unknown>"
	if current != nil {
		now = current.Value.String()
	}
	return now + "/" + target.Value.String()
}

// resourceTarget renders a Resource or ContainerResource metric, prefixed
// with the resource name: by average value, or by utilization percent.
func resourceTarget(name corev1.ResourceName, target autoscalingv2.MetricTarget, current *autoscalingv2.MetricValueStatus) string {
	if target.AverageValue != nil {
		now := "<unknown>"
		if current != nil {
			now = current.AverageValue.String()
		}
		return fmt.Sprintf("%s: %s/%s", name, now, target.AverageValue.String())
	}
	now := "<unknown>"
	if current != nil && current.AverageUtilization != nil {
		now = fmt.Sprintf("%d%%", *current.AverageUtilization)
	}
	want := "<auto>"
	if target.AverageUtilization != nil {
		want = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name, now, want)
}
