package hpa

import (
	"context"
	"errors"
	"fmt"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// reconcile is one evaluation of an HPA (a copy the pass may change),
// following upstream's reconcileAutoscaler.
func (c *Controller) reconcile(ctx context.Context, key string, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	original := hpa.Status.DeepCopy()
	now := c.opts.Clock.Now()
	ref := hpa.Spec.ScaleTargetRef
	reference := fmt.Sprintf("%s/%s/%s", ref.Kind, hpa.Namespace, ref.Name)

	scale, err := c.scales.getScale(ctx, hpa.Namespace, ref)
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", now, "the HPA controller was unable to get the target's current scale: %v", err)
		return errors.Join(fmt.Errorf("failed to query scale subresource for %s: %w", reference, err), c.writeStatus(ctx, hpa, original))
	}
	setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", now, "the HPA controller was able to get the target's current scale")
	current := scale.Spec.Replicas
	c.history.seed(key, current, now)
	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}

	var (
		desired  int32
		reason   string
		statuses []autoscalingv2.MetricStatus
		partial  error
	)
	rescale := true
	switch {
	case current == 0 && minReplicas != 0:
		desired, rescale = 0, false
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", now, "scaling is disabled since the replica count of the target is zero")
	case current > hpa.Spec.MaxReplicas:
		desired, reason = hpa.Spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas"
	case current < minReplicas:
		desired, reason = minReplicas, "Current number of replicas below Spec.MinReplicas"
	default:
		proposal, metric, sts, err := c.replicasForMetrics(ctx, hpa, scale, now)
		statuses = sts
		if err != nil && proposal < 0 {
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			return errors.Join(fmt.Errorf("failed to compute desired number of replicas based on listed metrics for %s: %w", reference, err), c.writeStatus(ctx, hpa, original))
		}
		partial = err // some metrics failed, but not in a way that stops scaling
		if proposal > current {
			reason = metric + " above target"
		} else if proposal < current {
			reason = "All metrics below target"
		}
		desired = c.normalize(hpa, key, current, proposal, minReplicas, now)
		rescale = desired != current
	}

	if rescale {
		scale.Spec.Replicas = desired
		if err := c.scales.updateScale(ctx, hpa.Namespace, ref, scale); err != nil {
			c.recorder.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err)
			setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", now, "the HPA controller was unable to update the target scale: %v", err)
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			return errors.Join(fmt.Errorf("failed to rescale %s: %w", reference, err), c.writeStatus(ctx, hpa, original))
		}
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", now, "the HPA controller was able to update the target scale to %d", desired)
		c.recorder.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		if hpa.Spec.Behavior != nil {
			c.history.scaled(key, withDefaults(hpa.Spec.Behavior, c.opts.DownscaleStabilization), current, desired, now)
		}
		c.log.Info("rescaled", "hpa", key, "target", reference, "from", current, "to", desired, "reason", reason)
	} else {
		desired = current
	}
	c.setStatus(hpa, current, desired, statuses, rescale, now)
	return errors.Join(c.writeStatus(ctx, hpa, original), partial)
}

// normalize bounds the metrics' proposal: stabilization (the default
// scale-down window, or the behavior's windows), then min/max and the
// scale rate (upstream's fixed one, or the behavior's policies), setting
// the AbleToScale and ScalingLimited conditions to say what held it back.
func (c *Controller) normalize(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, current, proposal, minReplicas int32, now time.Time) int32 {
	var stabilized int32
	var reason, message string
	var lim limit
	if hpa.Spec.Behavior == nil {
		stabilized = c.history.stabilize(key, proposal, c.opts.DownscaleStabilization, now)
		reason, message = "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
		lim = limitWithoutBehavior(current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
	} else {
		b := withDefaults(hpa.Spec.Behavior, c.opts.DownscaleStabilization)
		stabilized, reason, message = c.history.stabilizeWithBehavior(key, current, proposal, b, now)
		lim = c.history.limitWithBehavior(key, current, stabilized, minReplicas, hpa.Spec.MaxReplicas, b, now)
	}
	if stabilized != proposal {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, reason, now, "%s", message)
	} else {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", now, "recommended size matches current size")
	}
	limited := corev1.ConditionFalse
	if lim.replicas != stabilized {
		limited = corev1.ConditionTrue
	}
	setCondition(hpa, autoscalingv2.ScalingLimited, limited, lim.reason, now, "%s", lim.message)
	return lim.replicas
}

// replicasForMetrics proposes the largest replica count any metric asks
// for, with its name and the metrics' statuses. When every metric fails,
// or some fail and the rest would scale down, it returns -1 and the first
// failure (and sets ScalingActive from it); otherwise a failure comes back
// beside a usable proposal.
func (c *Controller) replicasForMetrics(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, scale *autoscalingv1.Scale, now time.Time) (int32, string, []autoscalingv2.MetricStatus, error) {
	selector, err := c.selector(hpa, scale, now)
	if err != nil {
		return -1, "", nil, err
	}
	pods, err := c.pods.Pods(hpa.Namespace).List(selector)
	if err != nil {
		return -1, "", nil, fmt.Errorf("unable to get pods while calculating replica count: %w", err)
	}
	statuses := make([]autoscalingv2.MetricStatus, len(hpa.Spec.Metrics))
	var (
		replicas  int32
		metric    string
		invalid   int
		firstErr  error
		firstCond metricFailure
	)
	for i, spec := range hpa.Spec.Metrics {
		proposal, name, status, fail := c.replicasForMetric(ctx, hpa, spec, scale.Spec.Replicas, selector, pods, now)
		if fail != nil {
			if invalid == 0 {
				firstErr, firstCond = fail.err, *fail
			}
			invalid++
			continue
		}
		statuses[i] = status
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if invalid > 0 {
		firstErr = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(hpa.Spec.Metrics), firstErr)
	}
	if invalid >= len(hpa.Spec.Metrics) || invalid > 0 && replicas < scale.Spec.Replicas {
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, firstCond.reason, now, "%s", firstCond.message)
		return -1, "", statuses, firstErr
	}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", now, "the HPA was able to successfully calculate a replica count from %s", metric)
	return replicas, metric, statuses, firstErr
}

// selector parses the target's pod selector from its scale subresource.
func (c *Controller) selector(hpa *autoscalingv2.HorizontalPodAutoscaler, scale *autoscalingv1.Scale, now time.Time) (labels.Selector, error) {
	if scale.Status.Selector == "" {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "SelectorRequired", "selector is required")
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", now, "the HPA target's scale is missing a selector")
		return nil, errors.New("selector is required")
	}
	sel, err := labels.Parse(scale.Status.Selector)
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "InvalidSelector", fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err))
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", now, "the HPA target's scale has an invalid selector: %v", err)
		return nil, fmt.Errorf("couldn't convert selector into a corresponding internal selector object: %w", err)
	}
	return sel, nil
}

// metricFailure is why one metric gave no proposal: the ScalingActive
// reason and message, and the error.
type metricFailure struct {
	reason, message string
	err             error
}

// replicasForMetric proposes a replica count from one metric.
func (c *Controller) replicasForMetric(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec, current int32, selector labels.Selector, pods []*corev1.Pod, now time.Time) (int32, string, autoscalingv2.MetricStatus, *metricFailure) {
	fail := func(reason string, err error) (int32, string, autoscalingv2.MetricStatus, *metricFailure) {
		c.recorder.Event(hpa, corev1.EventTypeWarning, reason, err.Error())
		return 0, "", autoscalingv2.MetricStatus{}, &metricFailure{reason: reason, message: fmt.Sprintf("the HPA was unable to compute the replica count: %v", err), err: err}
	}
	var (
		res       corev1.ResourceName
		target    autoscalingv2.MetricTarget
		container string
		failure   = "FailedGetResourceMetric"
		kind      = "resource"
	)
	switch {
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		res, target = spec.Resource.Name, spec.Resource.Target
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		res, target, container = spec.ContainerResource.Name, spec.ContainerResource.Target, spec.ContainerResource.Container
		failure, kind = "FailedGetContainerResourceMetric", "container resource"
	default:
		err := fmt.Errorf("metric type %q is not supported: Skiff has no custom or external metrics API", spec.Type)
		return fail("InvalidMetricSourceType", err)
	}
	calc := calculator{tolerances: c.tolerances(hpa), cpuInitialization: c.opts.CPUInitialization, readinessDelay: c.opts.InitialReadinessDelay, now: now}
	metrics, _, err := c.opts.Metrics.PodUsage(ctx, res, hpa.Namespace, selector, container)
	if err != nil {
		return fail(failure, fmt.Errorf("failed to get %s utilization: unable to get metrics for resource %s: %w", res, res, err))
	}
	value := autoscalingv2.MetricValueStatus{}
	var replicas int32
	var name string
	switch {
	case target.Type == autoscalingv2.UtilizationMetricType && target.AverageUtilization != nil:
		var utilization int32
		var raw int64
		replicas, utilization, raw, err = calc.utilizationReplicas(current, *target.AverageUtilization, pods, metrics, res, container)
		if err != nil {
			return fail(failure, fmt.Errorf("failed to get %s utilization: %w", res, err))
		}
		value.AverageUtilization = &utilization
		value.AverageValue = resource.NewMilliQuantity(raw, resource.DecimalSI)
		name = fmt.Sprintf("%s %s utilization (percentage of request)", res, kind)
	case target.Type == autoscalingv2.AverageValueMetricType && target.AverageValue != nil:
		var usage int64
		replicas, usage, err = calc.averageValueReplicas(current, target.AverageValue.MilliValue(), pods, metrics, res)
		if err != nil {
			return fail(failure, fmt.Errorf("failed to get %s usage: %w", res, err))
		}
		value.AverageValue = resource.NewMilliQuantity(usage, resource.DecimalSI)
		name = fmt.Sprintf("%s %s", res, kind)
	default:
		return fail("InvalidMetricSourceType", fmt.Errorf("invalid %s metric source: neither a utilization target nor a value target was set", kind))
	}
	status := autoscalingv2.MetricStatus{Type: spec.Type}
	if container != "" {
		status.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: res, Container: container, Current: value}
	} else {
		status.Resource = &autoscalingv2.ResourceMetricStatus{Name: res, Current: value}
	}
	return replicas, name, status, nil
}

// tolerances are the controller's, or the behavior's where it sets one.
func (c *Controller) tolerances(hpa *autoscalingv2.HorizontalPodAutoscaler) tolerances {
	t := tolerances{down: c.opts.Tolerance, up: c.opts.Tolerance}
	if b := hpa.Spec.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

// setStatus fills the status as upstream's setStatus does; lastScaleTime
// moves only on a rescale.
func (c *Controller) setStatus(hpa *autoscalingv2.HorizontalPodAutoscaler, current, desired int32, metrics []autoscalingv2.MetricStatus, rescaled bool, now time.Time) {
	hpa.Status.CurrentReplicas = current
	hpa.Status.DesiredReplicas = desired
	hpa.Status.CurrentMetrics = nil
	for _, m := range metrics {
		if m.Type != "" {
			hpa.Status.CurrentMetrics = append(hpa.Status.CurrentMetrics, m)
		}
	}
	if rescaled {
		t := metav1.NewTime(now)
		hpa.Status.LastScaleTime = &t
	}
}

// writeStatus writes the HPA's status through the status subresource when
// it changed.
func (c *Controller) writeStatus(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, original *autoscalingv2.HorizontalPodAutoscalerStatus) error {
	if apiequality.Semantic.DeepEqual(original, &hpa.Status) {
		return nil
	}
	_, err := c.client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		if ctx.Err() == nil {
			c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedUpdateStatus", err.Error())
		}
		return fmt.Errorf("failed to update status for %s: %w", hpa.Name, err)
	}
	return nil
}

// setCondition sets one condition, moving its transition time only when
// its status changes.
func setCondition(hpa *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason string, now time.Time, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for i := range hpa.Status.Conditions {
		cond := &hpa.Status.Conditions[i]
		if cond.Type != typ {
			continue
		}
		if cond.Status != status {
			cond.LastTransitionTime = metav1.NewTime(now)
		}
		cond.Status, cond.Reason, cond.Message = status, reason, msg
		return
	}
	hpa.Status.Conditions = append(hpa.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
		Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now),
	})
}
