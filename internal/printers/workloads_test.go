package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
	{Name: "nginx", Image: "nginx:1.27"},
	{Name: "sidecar", Image: "busybox"},
}}}

func TestDeploymentCells(t *testing.T) {
	tests := []struct {
		name string
		d    appsv1.Deployment
		want []any
	}{
		{
			name: "rolling out",
			d: appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](3),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: template,
				},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2},
			},
			want: []any{"web", "2/3", int64(1), int64(2), "5m", "nginx,sidecar", "nginx:1.27,busybox", "app=web"},
		},
		{
			name: "no selector or replicas",
			d:    appsv1.Deployment{},
			want: []any{"web", "0/0", int64(0), int64(0), "5m", "", "", ""},
		},
		{
			name: "invalid selector",
			d: appsv1.Deployment{Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}},
			}}},
			want: []any{"web", "0/0", int64(0), int64(0), "5m", "", "", "<invalid>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.ObjectMeta = metav1.ObjectMeta{Name: "web", CreationTimestamp: created}
			checkRow(t, cells(t, gk("apps", "Deployment"), &tt.d), tt.want)
		})
	}
}

func TestOtherWorkloadCells(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "w", CreationTimestamp: created}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}

	checkRow(t, cells(t, gk("apps", "ReplicaSet"), &appsv1.ReplicaSet{
		ObjectMeta: meta,
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), Selector: selector, Template: template},
		Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
	}), []any{"w", int64(3), int64(3), int64(1), "5m", "nginx,sidecar", "nginx:1.27,busybox", "app=w"})

	checkRow(t, cells(t, gk("apps", "StatefulSet"), &appsv1.StatefulSet{
		ObjectMeta: meta,
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Template: template},
		Status:     appsv1.StatefulSetStatus{ReadyReplicas: 2},
	}), []any{"w", "2/2", "5m", "nginx,sidecar", "nginx:1.27,busybox"})

	ds := template.DeepCopy()
	ds.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	checkRow(t, cells(t, gk("apps", "DaemonSet"), &appsv1.DaemonSet{
		ObjectMeta: meta,
		Spec:       appsv1.DaemonSetSpec{Selector: selector, Template: *ds},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2,
			UpdatedNumberScheduled: 3, NumberAvailable: 2},
	}), []any{"w", int64(3), int64(3), int64(2), int64(3), int64(2), "kubernetes.io/os=linux", "5m",
		"nginx,sidecar", "nginx:1.27,busybox", "app=w"})

	checkRow(t, cells(t, gk("", "ReplicationController"), &corev1.ReplicationController{ObjectMeta: meta}),
		[]any{"w", int64(0), int64(0), int64(0), "5m", "", "", "<none>"})

	checkRow(t, cells(t, gk("policy", "PodDisruptionBudget"), &policyv1.PodDisruptionBudget{
		ObjectMeta: meta,
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("50%"))},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
	}), []any{"w", "50%", "N/A", int64(1), "5m"})

	rev := &appsv1.ControllerRevision{ObjectMeta: meta, Revision: 4}
	rev.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "fluentd", Controller: ptr.To(true)}}
	checkRow(t, cells(t, gk("apps", "ControllerRevision"), rev), []any{"w", "daemonset.apps/fluentd", int64(4), "5m"})
}

func TestJobCells(t *testing.T) {
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	started, finished := ago(4*time.Minute), ago(time.Minute)
	deleted := ago(time.Second)
	tests := []struct {
		name string
		job  batchv1.Job
		want []any // Status, Completions, Duration
	}{
		{
			name: "not started",
			job:  batchv1.Job{},
			want: []any{"Running", "0/1", ""},
		},
		{
			name: "running",
			job: batchv1.Job{
				Spec:   batchv1.JobSpec{Completions: ptr.To[int32](3)},
				Status: batchv1.JobStatus{Succeeded: 1, StartTime: &started},
			},
			want: []any{"Running", "1/3", "4m"},
		},
		{
			name: "parallel work queue",
			job: batchv1.Job{
				Spec:   batchv1.JobSpec{Parallelism: ptr.To[int32](3)},
				Status: batchv1.JobStatus{StartTime: &started},
			},
			want: []any{"Running", "0/1 of 3", "4m"},
		},
		{
			name: "complete",
			job: batchv1.Job{
				Spec: batchv1.JobSpec{Completions: ptr.To[int32](3)},
				Status: batchv1.JobStatus{Succeeded: 3, StartTime: &started, CompletionTime: &finished,
					Conditions: append(cond(batchv1.JobSuccessCriteriaMet), cond(batchv1.JobComplete)...)},
			},
			want: []any{"Complete", "3/3", "3m"},
		},
		{
			name: "failed",
			job:  batchv1.Job{Status: batchv1.JobStatus{Conditions: cond(batchv1.JobFailed)}},
			want: []any{"Failed", "0/1", ""},
		},
		{
			name: "terminating",
			job:  batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted}},
			want: []any{"Terminating", "0/1", ""},
		},
		{
			name: "suspended",
			job:  batchv1.Job{Status: batchv1.JobStatus{Conditions: cond(batchv1.JobSuspended)}},
			want: []any{"Suspended", "0/1", ""},
		},
		{
			name: "failure target",
			job:  batchv1.Job{Status: batchv1.JobStatus{Conditions: cond(batchv1.JobFailureTarget)}},
			want: []any{"FailureTarget", "0/1", ""},
		},
		{
			name: "success criteria met",
			job:  batchv1.Job{Status: batchv1.JobStatus{Conditions: cond(batchv1.JobSuccessCriteriaMet)}},
			want: []any{"SuccessCriteriaMet", "0/1", ""},
		},
		{
			name: "false condition ignored",
			job: batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobSuspended, Status: corev1.ConditionFalse},
			}}},
			want: []any{"Running", "0/1", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.job.Name, tt.job.CreationTimestamp = "pi", created
			tt.job.Spec.Template = template
			tt.job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/job-name": "pi"}}
			want := append(append([]any{"pi"}, tt.want...), "5m", "nginx,sidecar", "nginx:1.27,busybox", "batch.kubernetes.io/job-name=pi")
			checkRow(t, cells(t, gk("batch", "Job"), &tt.job), want)
		})
	}
}

func TestCronJobCells(t *testing.T) {
	last := ago(90 * time.Second)
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", CreationTimestamp: created},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(false),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template}}},
		Status: batchv1.CronJobStatus{LastScheduleTime: &last, Active: []corev1.ObjectReference{{Name: "nightly-1"}}},
	}
	checkRow(t, cells(t, gk("batch", "CronJob"), cj),
		[]any{"nightly", "0 3 * * *", "<none>", "False", int64(1), "90s", "5m", "nginx,sidecar", "nginx:1.27,busybox", "<none>"})
}

func TestHPACells(t *testing.T) {
	cpu := func(target int32) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
		}}
	}
	cpuNow := func(current int32) autoscalingv2.MetricStatus {
		return autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &current},
		}}
	}
	memory := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("512Mi"))},
	}}
	pods := autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("1k"))},
	}}
	external := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "queue"},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr.To(resource.MustParse("30"))},
	}}
	externalNow := autoscalingv2.MetricStatus{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
		Current: autoscalingv2.MetricValueStatus{Value: ptr.To(resource.MustParse("12"))},
	}}
	objectAvg := autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("500m"))},
	}}

	tests := []struct {
		name    string
		metrics []autoscalingv2.MetricSpec
		current []autoscalingv2.MetricStatus
		want    string
	}{
		{"no metrics", nil, nil, "<none>"},
		{"cpu measured", []autoscalingv2.MetricSpec{cpu(50)}, []autoscalingv2.MetricStatus{cpuNow(40)}, "cpu: 40%/50%"},
		{"cpu not yet measured", []autoscalingv2.MetricSpec{cpu(50)}, nil, "cpu: <unknown>/50%"},
		{"memory by value", []autoscalingv2.MetricSpec{memory}, nil, "memory: <unknown>/512Mi"},
		{"memory status without a value", []autoscalingv2.MetricSpec{memory}, []autoscalingv2.MetricStatus{cpuNow(10)}, "memory: <nil>/512Mi"},
		{"pods", []autoscalingv2.MetricSpec{pods}, nil, "<unknown>/1k"},
		{"external", []autoscalingv2.MetricSpec{external}, []autoscalingv2.MetricStatus{externalNow}, "12/30"},
		{"object average", []autoscalingv2.MetricSpec{objectAvg}, nil, "<unknown>/500m (avg)"},
		{"unknown type", []autoscalingv2.MetricSpec{{Type: "Weather"}}, nil, "<unknown type>"},
		{
			"more than two",
			[]autoscalingv2.MetricSpec{cpu(50), pods, external},
			[]autoscalingv2.MetricStatus{cpuNow(70)},
			"cpu: 70%/50%, <unknown>/1k + 1 more...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: created},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
					MinReplicas:    ptr.To[int32](2), MaxReplicas: 10, Metrics: tt.metrics,
				},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 4, CurrentMetrics: tt.current},
			}
			checkRow(t, cells(t, gk("autoscaling", "HorizontalPodAutoscaler"), h),
				[]any{"web", "Deployment/web", tt.want, "2", int64(10), int64(4), "5m"})
		})
	}

	unset := &autoscalingv2.HorizontalPodAutoscaler{}
	if got := cells(t, gk("autoscaling", "HorizontalPodAutoscaler"), unset)[3]; got != "<unset>" {
		t.Errorf("MinPods of an unset minimum: %v", got)
	}
}
