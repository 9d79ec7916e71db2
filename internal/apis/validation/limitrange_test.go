package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

func TestValidateLimitRange(t *testing.T) {
	lr := func(doc string) *corev1.LimitRange {
		return build[corev1.LimitRange](t, "metadata: {name: limits, namespace: default}\nspec:\n  limits:\n"+doc)
	}
	l0 := "spec.limits[0]"
	cases := []createCase{
		{name: "container bounds and defaults", obj: lr(`
  - type: Container
    min: {cpu: 100m, memory: 64Mi}
    max: {cpu: "2", memory: 1Gi}
    default: {cpu: 500m}
    defaultRequest: {cpu: 200m}
    maxLimitRequestRatio: {cpu: "4"}
  - type: Pod
    max: {cpu: "4"}
  - type: PersistentVolumeClaim
    min: {storage: 1Gi}
    max: {storage: 10Gi}
`)},
		{name: "min above max", obj: lr(`
  - {type: Container, min: {cpu: "2"}, max: {cpu: "1"}}
`), want: []want{
			invalid(l0+".min[cpu]", "min value 2 is greater than max value 1"),
			// Defaults fill default from max and defaultRequest from default.
			invalid(l0+".default[cpu]", "min value 2 is greater than default value 1"),
			invalid(l0+".defaultRequest[cpu]", "min value 2 is greater than default request value 1"),
		}},
		{name: "default above max", obj: lr(`
  - {type: Container, max: {memory: 1Gi}, default: {memory: 2Gi}, defaultRequest: {memory: 512Mi}}
`), want: []want{invalid(l0+".default[memory]", "default value 2Gi is greater than max value 1Gi")}},
		{name: "defaults on a pod item", obj: lr(`
  - {type: Pod, max: {cpu: "1"}, default: {cpu: 500m}}
`), want: []want{forbidden(l0+".default", "may not be specified when `type` is 'Pod'")}},
		{name: "duplicate type", obj: lr(`
  - {type: Pod, max: {cpu: "1"}}
  - {type: Pod, max: {cpu: "2"}}
`), want: []want{duplicate("spec.limits[1].type")}},
		{name: "unknown type", obj: lr(`
  - {type: Node, max: {cpu: "1"}}
`), want: []want{invalid(l0+".type", "must be a standard limit type or fully qualified")}},
		{name: "ratio below one", obj: lr(`
  - {type: Container, maxLimitRequestRatio: {cpu: 500m}}
`), want: []want{invalid(l0+".maxLimitRequestRatio[cpu]", "ratio 500m is less than 1")}},
		{name: "ratio max/min cannot meet", obj: lr(`
  - {type: Pod, min: {cpu: "1"}, max: {cpu: "2"}, maxLimitRequestRatio: {cpu: "3"}}
`), want: []want{invalid(l0+".maxLimitRequestRatio[cpu]", "ratio 3 is greater than max/min = 2.000000")}},
		{name: "claim without storage bounds", obj: lr(`
  - {type: PersistentVolumeClaim, max: {cpu: "1"}}
`), want: []want{required(l0+".limits", "either minimum or maximum storage value is required")}},
		{name: "container resource name", obj: lr(`
  - {type: Container, max: {pods: "1"}}
`), want: []want{invalid(l0+".max[pods]", "must be a standard resource for containers"),
			invalid(l0+".default[pods]", "must be a standard resource for containers"),
			invalid(l0+".defaultRequest[pods]", "must be a standard resource for containers")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, ValidateCreate(tc.obj), tc.want) })
	}
}

const podPresetDoc = `
metadata: {name: proxy, namespace: default}
spec:
  selector: {matchLabels: {role: frontend}}
  env: [{name: DB_PORT, value: "6379"}]
  envFrom: [{configMapRef: {name: etcd-env-config}}]
  volumeMounts: [{name: cache-volume, mountPath: /cache}]
  volumes: [{name: cache-volume, emptyDir: {}}]
`

func TestValidatePodPreset(t *testing.T) {
	pp := func(m ...func(*settingsv1alpha1.PodPreset)) *settingsv1alpha1.PodPreset {
		return build[settingsv1alpha1.PodPreset](t, podPresetDoc, m...)
	}
	cases := []createCase{
		{name: "valid", obj: pp()},
		{name: "nothing to inject", obj: pp(func(p *settingsv1alpha1.PodPreset) {
			p.Spec.Env, p.Spec.EnvFrom, p.Spec.Volumes, p.Spec.VolumeMounts = nil, nil, nil, nil
		}), want: []want{required("spec.volumes.env.envFrom.volumeMounts", "must specify at least one")}},
		{name: "bad selector", obj: pp(func(p *settingsv1alpha1.PodPreset) { p.Spec.Selector.MatchLabels = map[string]string{"a b": "c"} }),
			want: []want{invalid("spec.selector.matchLabels")}},
		{name: "bad env name", obj: pp(func(p *settingsv1alpha1.PodPreset) { p.Spec.Env[0].Name = "" }),
			want: []want{required("spec.env[0].name")}},
		{name: "mount of an unknown volume", obj: pp(func(p *settingsv1alpha1.PodPreset) { p.Spec.VolumeMounts[0].Name = "other" }),
			want: []want{notFound("spec.volumeMounts[0].name")}},
		{name: "bad volume name", obj: pp(func(p *settingsv1alpha1.PodPreset) {
			p.Spec.Volumes[0].Name = "Cache_Volume"
			p.Spec.VolumeMounts = nil
		}),
			want: []want{invalid("spec.volumes[0].name")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, ValidateCreate(tc.obj), tc.want) })
	}
	old := stored[settingsv1alpha1.PodPreset](t, podPresetDoc)
	relabeled := changed(old, func(p *settingsv1alpha1.PodPreset) { p.Labels = map[string]string{"team": "web"} })
	checkErrors(t, ValidateUpdate(relabeled, old), nil)
	respecced := changed(old, func(p *settingsv1alpha1.PodPreset) { p.Spec.Env[0].Value = "6380" })
	checkErrors(t, ValidateUpdate(respecced, old), []want{invalid("spec", "field is immutable")})
}
