package autoscaling

import (
	"encoding/json"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

// fullV2 uses every metric source, a behavior, current metrics and
// conditions. Its CPU utilization metric comes last because that is where
// the trip through autoscaling/v1 puts it back.
const fullV2 = `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: default
  annotations: {team: a}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 500Mi}}
  - type: Pods
    pods:
      metric: {name: requests_per_second, selector: {matchLabels: {verb: GET}}}
      target: {type: AverageValue, averageValue: "1k"}
  - type: Object
    object:
      describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main}
      metric: {name: requests}
      target: {type: Value, value: "10k"}
  - type: Object
    object:
      describedObject: {kind: Service, name: web}
      metric: {name: hits}
      target: {type: AverageValue, averageValue: "30"}
  - type: External
    external:
      metric: {name: queue_depth}
      target: {type: AverageValue, averageValue: "30"}
  - type: ContainerResource
    containerResource: {name: cpu, container: app, target: {type: Utilization, averageUtilization: 60}}
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies: [{type: Pods, value: 4, periodSeconds: 15}]
    scaleDown:
      selectPolicy: Min
      tolerance: 50m
      policies: [{type: Percent, value: 10, periodSeconds: 60}]
status:
  observedGeneration: 3
  lastScaleTime: "2026-01-02T03:04:05Z"
  currentReplicas: 3
  desiredReplicas: 4
  currentMetrics:
  - type: Resource
    resource: {name: cpu, current: {averageUtilization: 55, averageValue: 300m}}
  - type: Pods
    pods: {metric: {name: requests_per_second}, current: {averageValue: "900"}}
  - type: External
    external: {metric: {name: queue_depth}, current: {value: "120", averageValue: "40"}}
  conditions:
  - type: AbleToScale
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
    reason: ReadyForNewScale
    message: recommended size matches current size
`

func TestV2ToV1ToV2(t *testing.T) {
	cases := []struct {
		name string
		v2   string
	}{
		{name: "every metric source, behavior and status", v2: fullV2},
		{name: "cpu only", v2: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
status: {currentReplicas: 1, desiredReplicas: 1}
`},
		{name: "external value target", v2: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  maxReplicas: 3
  metrics:
  - type: External
    external: {metric: {name: lag, selector: {matchLabels: {topic: t}}}, target: {type: Value, value: "100"}}
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &autoscalingv2.HorizontalPodAutoscaler{}
			unmarshal(t, tc.v2, in)
			before := in.DeepCopy()
			v1 := V2ToV1(in)
			got := V1ToV2(v1)
			if !apiequality.Semantic.DeepEqual(in, before) {
				t.Fatal("V2ToV1 modified its input")
			}
			in.TypeMeta = got.TypeMeta
			if !apiequality.Semantic.DeepEqual(got, in) {
				t.Errorf("round trip through v1 =\n%s\nwant\n%s\nv1 was\n%s", toYAML(t, got), toYAML(t, in), toYAML(t, v1))
			}
		})
	}
}

func TestV2ToV1(t *testing.T) {
	in := &autoscalingv2.HorizontalPodAutoscaler{}
	unmarshal(t, fullV2, in)
	out := V2ToV1(in)

	if out.APIVersion != "autoscaling/v1" || out.Kind != "HorizontalPodAutoscaler" {
		t.Errorf("TypeMeta = %+v", out.TypeMeta)
	}
	if p := out.Spec.TargetCPUUtilizationPercentage; p == nil || *p != 50 {
		t.Errorf("targetCPUUtilizationPercentage = %v, want 50", p)
	}
	if p := out.Status.CurrentCPUUtilizationPercentage; p == nil || *p != 55 {
		t.Errorf("currentCPUUtilizationPercentage = %v, want 55", p)
	}
	if out.Annotations["team"] != "a" {
		t.Errorf("user annotation lost: %v", out.Annotations)
	}

	var metrics []autoscalingv1.MetricSpec
	mustJSON(t, out.Annotations[MetricSpecsAnnotation], &metrics)
	if len(metrics) != 6 {
		t.Fatalf("%s holds %d metrics, want the 6 that are not the CPU target", MetricSpecsAnnotation, len(metrics))
	}
	if r := metrics[0].Resource; r == nil || r.Name != "memory" || r.TargetAverageValue == nil || r.TargetAverageValue.String() != "500Mi" {
		t.Errorf("first metric = %+v, want memory averaging 500Mi", metrics[0])
	}
	var current []autoscalingv1.MetricStatus
	mustJSON(t, out.Annotations[MetricStatusesAnnotation], &current)
	if len(current) != 3 {
		t.Errorf("%s holds %d statuses, want 3", MetricStatusesAnnotation, len(current))
	}
	var conditions []autoscalingv1.HorizontalPodAutoscalerCondition
	mustJSON(t, out.Annotations[ConditionsAnnotation], &conditions)
	if len(conditions) != 1 || conditions[0].Reason != "ReadyForNewScale" {
		t.Errorf("conditions = %+v", conditions)
	}
	// Upstream writes behavior with Go field names, which its decoder and
	// ours both accept.
	for _, key := range []string{`"ScaleUp"`, `"ScaleDown"`, `"SelectPolicy":"Min"`, `"Tolerance":"50m"`} {
		if !strings.Contains(out.Annotations[BehaviorSpecsAnnotation], key) {
			t.Errorf("%s = %s, missing %s", BehaviorSpecsAnnotation, out.Annotations[BehaviorSpecsAnnotation], key)
		}
	}
}

func TestV1ToV2ToV1(t *testing.T) {
	cases := []struct {
		name string
		v1   string
		// added are annotations the trip adds; upstream records every
		// current metric, even one v1 can show.
		added map[string]string
	}{
		{name: "cpu target and current utilization", added: map[string]string{
			MetricStatusesAnnotation: `[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":70,"currentAverageValue":"0"}}]`,
		}, v1: `
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  targetCPUUtilizationPercentage: 65
status: {currentReplicas: 2, desiredReplicas: 3, currentCPUUtilizationPercentage: 70}
`},
		{name: "metrics and behavior carried in annotations", v1: `
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: default
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{"type":"Pods","pods":{"metricName":"rps","targetAverageValue":"10"}}]'
    autoscaling.alpha.kubernetes.io/behavior: '{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":null}}'
    autoscaling.alpha.kubernetes.io/current-metrics: '[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":40,"currentAverageValue":"200m"}}]'
    autoscaling.alpha.kubernetes.io/conditions: '[{"type":"ScalingActive","status":"True","lastTransitionTime":"2026-01-02T03:04:05Z","reason":"ValidMetricFound"}]'
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  targetCPUUtilizationPercentage: 50
status: {currentReplicas: 2, desiredReplicas: 2, currentCPUUtilizationPercentage: 40}
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &autoscalingv1.HorizontalPodAutoscaler{}
			unmarshal(t, tc.v1, in)
			v2 := V1ToV2(in)
			for k := range v2.Annotations {
				if strings.HasPrefix(k, "autoscaling.alpha.kubernetes.io/") {
					t.Errorf("stored form keeps round-trip annotation %s", k)
				}
			}
			got := V2ToV1(v2)
			for k, v := range tc.added {
				if in.Annotations == nil {
					in.Annotations = map[string]string{}
				}
				in.Annotations[k] = v
			}
			// Annotation values are compared as JSON: key order and null
			// members may differ from what another server wrote.
			if !sameAnnotations(t, got.Annotations, in.Annotations) {
				t.Errorf("annotations after round trip =\n%v\nwant\n%v", got.Annotations, in.Annotations)
			}
			got.Annotations, in.Annotations = nil, nil
			if !apiequality.Semantic.DeepEqual(got, in) {
				t.Errorf("round trip through v2 =\n%s\nwant\n%s", toYAML(t, got), toYAML(t, in))
			}
		})
	}
}

func TestV1ToV2(t *testing.T) {
	cases := []struct {
		name       string
		v1         string
		wantCPU    []int32 // utilization targets of the CPU resource metrics, in order
		wantOthers int
		behavior   bool
	}{
		{
			name:    "no target means 80% cpu",
			v1:      `spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2}`,
			wantCPU: []int32{80},
		},
		{
			name:    "explicit target",
			v1:      `spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2, targetCPUUtilizationPercentage: 30}`,
			wantCPU: []int32{30},
		},
		{
			name: "annotated metrics come before the cpu target",
			v1: `
metadata:
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{"type":"External","external":{"metricName":"q","targetAverageValue":"5"}}]'
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2, targetCPUUtilizationPercentage: 30}`,
			wantCPU:    []int32{30},
			wantOthers: 1,
		},
		{
			name: "annotated metrics without a target get no cpu default",
			v1: `
metadata:
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"1Gi"}}]'
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2}`,
			wantOthers: 1,
		},
		{
			name: "broken annotations are ignored and dropped",
			v1: `
metadata:
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{'
    autoscaling.alpha.kubernetes.io/behavior: 'not json'
    autoscaling.alpha.kubernetes.io/conditions: '{}'
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2}`,
			wantCPU: []int32{80},
		},
		{
			name: "an empty behavior is no behavior",
			v1: `
metadata:
  annotations:
    autoscaling.alpha.kubernetes.io/behavior: '{}'
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2}`,
			wantCPU: []int32{80},
		},
		{
			name: "lower-case behavior keys are accepted",
			v1: `
metadata:
  annotations:
    autoscaling.alpha.kubernetes.io/behavior: '{"scaleUp":{"policies":[{"type":"Pods","value":1,"periodSeconds":60}]}}'
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 2}`,
			wantCPU:  []int32{80},
			behavior: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &autoscalingv1.HorizontalPodAutoscaler{}
			unmarshal(t, tc.v1, in)
			out := V1ToV2(in)
			if out.APIVersion != "autoscaling/v2" {
				t.Errorf("apiVersion = %q", out.APIVersion)
			}
			if len(out.Annotations) != 0 {
				t.Errorf("annotations = %v, want none", out.Annotations)
			}
			var cpu []int32
			others := 0
			for _, m := range out.Spec.Metrics {
				if m.Resource != nil && m.Resource.Name == "cpu" && m.Resource.Target.AverageUtilization != nil {
					cpu = append(cpu, *m.Resource.Target.AverageUtilization)
					if m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
						t.Errorf("cpu target type = %q", m.Resource.Target.Type)
					}
					continue
				}
				if len(cpu) > 0 {
					t.Errorf("metric %v follows the cpu target", m.Type)
				}
				others++
			}
			if !apiequality.Semantic.DeepEqual(cpu, tc.wantCPU) || others != tc.wantOthers {
				t.Errorf("cpu targets %v and %d other metrics, want %v and %d", cpu, others, tc.wantCPU, tc.wantOthers)
			}
			if (out.Spec.Behavior != nil) != tc.behavior {
				t.Errorf("behavior = %+v, want set: %v", out.Spec.Behavior, tc.behavior)
			}
		})
	}
}

func TestNil(t *testing.T) {
	if V1ToV2(nil) != nil || V2ToV1(nil) != nil {
		t.Error("converting nil should give nil")
	}
}

func sameAnnotations(t *testing.T, got, want map[string]string) bool {
	t.Helper()
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		if !strings.HasPrefix(k, "autoscaling.alpha.kubernetes.io/") {
			if g != w {
				return false
			}
			continue
		}
		var gv, wv any
		mustJSON(t, g, &gv)
		mustJSON(t, w, &wv)
		if !apiequality.Semantic.DeepEqual(dropNulls(gv), dropNulls(wv)) {
			return false
		}
	}
	return true
}

// dropNulls removes null object members, which encoders differ on.
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
			} else {
				x[k] = dropNulls(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = dropNulls(x[i])
		}
	}
	return v
}

func unmarshal(t *testing.T, doc string, obj any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(strings.TrimSpace(doc)), obj); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
}

func toYAML(t *testing.T, obj any) string {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
