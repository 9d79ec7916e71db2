package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

type updateCase struct {
	name     string
	obj, old runtime.Object
	want     []want
}

func TestValidateUpdate(t *testing.T) {
	var cases []updateCase
	for _, group := range []func(*testing.T) []updateCase{
		metaUpdateCases, podUpdateCases, workloadUpdateCases, serviceUpdateCases, configUpdateCases, otherUpdateCases,
	} {
		cases = append(cases, group(t)...)
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateUpdate(tc.obj, tc.old), tc.want)
		})
	}
}

func metaUpdateCases(t *testing.T) []updateCase {
	cm := stored[corev1.ConfigMap](t, `
metadata: {name: cfg, namespace: default, uid: 11111111-0000-4000-8000-000000000001}
data: {a: b}
`)
	edit := func(m func(*corev1.ConfigMap)) *corev1.ConfigMap { return changed(cm, m) }
	return []updateCase{
		{name: "meta/data change", obj: edit(func(c *corev1.ConfigMap) { c.Data["a"] = "c" }), old: cm},
		{name: "meta/label change", obj: edit(func(c *corev1.ConfigMap) { c.Labels = map[string]string{"tier": "x"} }), old: cm},
		{name: "meta/rename", obj: edit(func(c *corev1.ConfigMap) { c.Name = "other" }), old: cm,
			want: []want{invalid("metadata.name", "field is immutable")}},
		{name: "meta/move namespace", obj: edit(func(c *corev1.ConfigMap) { c.Namespace = "other" }), old: cm,
			want: []want{invalid("metadata.namespace", "field is immutable")}},
		{name: "meta/new uid", obj: edit(func(c *corev1.ConfigMap) { c.UID = "22222222-0000-4000-8000-000000000002" }), old: cm,
			want: []want{invalid("metadata.uid", "field is immutable")}},
		{name: "meta/no resource version", obj: edit(func(c *corev1.ConfigMap) { c.ResourceVersion = "" }), old: cm,
			want: []want{invalid("metadata.resourceVersion", "must be specified for an update")}},
		{name: "meta/different kinds", obj: stored[corev1.Secret](t, `metadata: {name: cfg, namespace: default}`), old: cm,
			want: []want{{typ: field.ErrorTypeInternal, field: "<nil>"}}},
	}
}

func podUpdateCases(t *testing.T) []updateCase {
	pod := stored[corev1.Pod](t, podDoc, func(p *corev1.Pod) {
		p.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
		p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}}
	})
	edit := func(m func(*corev1.Pod)) *corev1.Pod { return changed(pod, m) }
	return []updateCase{
		{name: "pod/new image", obj: edit(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }), old: pod},
		{name: "pod/shorter deadline", obj: edit(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) }), old: pod},
		{name: "pod/longer deadline", obj: edit(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](6000) }), old: pod,
			want: []want{invalid("spec.activeDeadlineSeconds", "must be less than or equal to previous value")}},
		{name: "pod/added toleration", obj: edit(func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists})
		}), old: pod},
		{name: "pod/changed toleration", obj: edit(func(p *corev1.Pod) { p.Spec.Tolerations[0].Value = "api" }), old: pod,
			want: []want{forbidden("spec.tolerations")}},
		{name: "pod/added container", obj: edit(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox", TerminationMessagePolicy: "File", ImagePullPolicy: "Always"})
		}), old: pod, want: []want{forbidden("spec.containers")}},
		{name: "pod/changed restart policy", obj: edit(func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }), old: pod,
			want: []want{forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`")}},
		{name: "pod/changed env", obj: edit(func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Value = "dev" }), old: pod,
			want: []want{forbidden("spec")}},
		{name: "pod/removed image", obj: edit(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }), old: pod,
			want: []want{required("spec.containers[0].image")}},
	}
}

func workloadUpdateCases(t *testing.T) []updateCase {
	deploy := stored[appsv1.Deployment](t, deploymentDoc)
	sts := stored[appsv1.StatefulSet](t, statefulSetDoc)
	ds := stored[appsv1.DaemonSet](t, daemonSetDoc)
	rs := stored[appsv1.ReplicaSet](t, replicaSetDoc)
	job := stored[batchv1.Job](t, jobDoc)
	suspended := stored[batchv1.Job](t, jobDoc, func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) })
	cron := stored[batchv1.CronJob](t, cronJobDoc, func(c *batchv1.CronJob) { c.Name = strings.Repeat("c", 60) })
	newSelector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "track": "canary"}}
	return []updateCase{
		{name: "deployment/scale and new image", obj: changed(deploy, func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr.To[int32](5)
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		}), old: deploy},
		{name: "deployment/new selector", obj: changed(deploy, func(d *appsv1.Deployment) {
			d.Spec.Selector = newSelector
			d.Spec.Template.Labels["track"] = "canary"
		}), old: deploy, want: []want{invalid("spec.selector", "field is immutable")}},
		{name: "replicaset/new selector", obj: changed(rs, func(r *appsv1.ReplicaSet) {
			r.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}), old: rs, want: []want{invalid("spec.selector", "field is immutable")}},
		{name: "daemonset/new selector", obj: changed(ds, func(d *appsv1.DaemonSet) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent", "v": "2"}}
			d.Spec.Template.Labels["v"] = "2"
		}), old: ds, want: []want{invalid("spec.selector", "field is immutable")}},
		{name: "statefulset/scale and new template", obj: changed(sts, func(s *appsv1.StatefulSet) {
			s.Spec.Replicas = ptr.To[int32](3)
			s.Spec.Template.Spec.Containers[0].Image = "postgres:17"
		}), old: sts},
		{name: "statefulset/new service name", obj: changed(sts, func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db-headless" }), old: sts,
			want: []want{forbidden("spec", "updates to statefulset spec for fields other than")}},
		{name: "job/parallelism", obj: changed(job, func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](3) }), old: job},
		{name: "job/new selector", obj: changed(job, func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["extra"] = "x"
			j.Spec.Template.Labels["extra"] = "x"
		}), old: job, want: []want{
			invalid("spec.selector", "field is immutable"),
			invalid("spec.selector", "`selector` not auto-generated"),
			invalid("spec.template", "field is immutable"),
		}},
		{name: "job/new image", obj: changed(job, func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:5.36" }), old: job,
			want: []want{invalid("spec.template", "field is immutable")}},
		{name: "job/completions", obj: changed(job, func(j *batchv1.Job) { j.Spec.Completions = ptr.To[int32](4) }), old: job,
			want: []want{invalid("spec.completions", "field is immutable")}},
		{name: "job/suspended job gets a node selector", obj: changed(suspended, func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "batch"}
		}), old: suspended},
		{name: "job/suspended job gets a new image", obj: changed(suspended, func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].Image = "perl:5.36"
		}), old: suspended, want: []want{invalid("spec.template")}},
		{name: "cronjob/long name may still be updated", obj: changed(cron, func(c *batchv1.CronJob) { c.Spec.Schedule = "@daily" }), old: cron},
		{name: "cronjob/bad schedule on update", obj: changed(cron, func(c *batchv1.CronJob) { c.Spec.Schedule = "* * *" }), old: cron,
			want: []want{invalid("spec.schedule", "expected exactly 5 fields, found 3")}},
	}
}

func serviceUpdateCases(t *testing.T) []updateCase {
	svc := stored[corev1.Service](t, serviceDoc, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" })
	edit := func(m func(*corev1.Service)) *corev1.Service { return changed(svc, m) }
	return []updateCase{
		{name: "service/new ports", obj: edit(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}
		}), old: svc},
		{name: "service/new cluster IP", obj: edit(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		}), old: svc, want: []want{invalid("spec.clusterIPs[0]", "may not change once set")}},
		{name: "service/cluster IP dropped", obj: edit(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
		}), old: svc, want: []want{invalid("spec.clusterIPs[0]", "primary clusterIP can not be unset")}},
		{name: "service/to node port", obj: edit(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30001
		}), old: svc},
		{name: "service/to external name", obj: edit(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}
		}), old: svc},
	}
}

func configUpdateCases(t *testing.T) []updateCase {
	cm := stored[corev1.ConfigMap](t, `
metadata: {name: cfg, namespace: default}
immutable: true
data: {a: b}
`)
	secret := stored[corev1.Secret](t, `
metadata: {name: creds, namespace: default}
immutable: true
data: {password: aHVudGVyMg==}
`)
	mutable := stored[corev1.Secret](t, `
metadata: {name: creds, namespace: default}
data: {password: aHVudGVyMg==}
`)
	return []updateCase{
		{name: "configmap/immutable labels", obj: changed(cm, func(c *corev1.ConfigMap) { c.Labels = map[string]string{"a": "b"} }), old: cm},
		{name: "configmap/immutable data", obj: changed(cm, func(c *corev1.ConfigMap) { c.Data["a"] = "c" }), old: cm,
			want: []want{forbidden("data", "field is immutable when `immutable` is set")}},
		{name: "configmap/immutable unset", obj: changed(cm, func(c *corev1.ConfigMap) { c.Immutable = ptr.To(false) }), old: cm,
			want: []want{forbidden("immutable")}},
		{name: "secret/immutable data", obj: changed(secret, func(s *corev1.Secret) { s.Data["password"] = []byte("x") }), old: secret,
			want: []want{forbidden("data")}},
		{name: "secret/immutable stringData", obj: changed(secret, func(s *corev1.Secret) { s.StringData = map[string]string{"user": "me"} }), old: secret,
			want: []want{forbidden("data")}},
		{name: "secret/new type", obj: changed(mutable, func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeBasicAuth
			s.Data = map[string][]byte{"username": []byte("me")}
		}), old: mutable, want: []want{invalid("type", "field is immutable")}},
		{name: "secret/mutable data", obj: changed(mutable, func(s *corev1.Secret) { s.Data["password"] = []byte("x") }), old: mutable},
	}
}

func otherUpdateCases(t *testing.T) []updateCase {
	ic := stored[networkingv1.IngressClass](t, `
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
`)
	es := stored[discoveryv1.EndpointSlice](t, endpointSliceDoc)
	node := stored[corev1.Node](t, `
metadata: {name: worker-1}
spec: {podCIDRs: [10.244.1.0/24], providerID: "kind://docker/kind/worker-1"}
`)
	ns := stored[corev1.Namespace](t, `metadata: {name: team-a}`)
	hpa := stored[autoscalingv1.HorizontalPodAutoscaler](t, `
metadata: {name: web, namespace: default}
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 4}
`)
	return []updateCase{
		{name: "ingressclass/new controller", obj: changed(ic, func(c *networkingv1.IngressClass) { c.Spec.Controller = "example.com/other" }), old: ic,
			want: []want{invalid("spec.controller", "field is immutable")}},
		{name: "endpointslice/new endpoints", obj: changed(es, func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses = []string{"10.1.2.4"} }), old: es},
		{name: "endpointslice/new address type", obj: changed(es, func(e *discoveryv1.EndpointSlice) {
			e.AddressType = discoveryv1.AddressTypeFQDN
			e.Endpoints[0].Addresses = []string{"web.example.com"}
		}), old: es, want: []want{invalid("addressType", "field is immutable")}},
		{name: "node/new pod CIDR", obj: changed(node, func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.2.0/24"} }), old: node,
			want: []want{forbidden("spec.podCIDRs")}},
		{name: "node/cordon", obj: changed(node, func(n *corev1.Node) { n.Spec.Unschedulable = true }), old: node},
		{name: "namespace/new label", obj: changed(ns, func(n *corev1.Namespace) { n.Labels["team"] = "a" }), old: ns},
		{name: "hpa/v1 max below min", obj: changed(hpa, func(h *autoscalingv1.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](9) }), old: hpa,
			want: []want{invalid("spec.maxReplicas")}},
	}
}
