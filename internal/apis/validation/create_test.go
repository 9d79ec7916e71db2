package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Valid objects as a user would write them; the cases below break them one
// way at a time.
const (
	podDoc = `
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports: [{name: http, containerPort: 80}]
    env: [{name: MODE, value: prod}]
    resources: {limits: {cpu: 500m, memory: 128Mi}}
    volumeMounts: [{name: cfg, mountPath: /etc/web}]
    readinessProbe: {httpGet: {path: /healthz, port: http}}
  volumes: [{name: cfg, configMap: {name: web}}]
`
	deploymentDoc = `
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
`
	statefulSetDoc = `
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16, volumeMounts: [{name: data, mountPath: /var/lib/postgresql}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`
	daemonSetDoc = `
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:v1}]
`
	replicaSetDoc = `
metadata: {name: web-5d8f, namespace: default}
spec:
  selector: {matchLabels: {app: web, pod-template-hash: 5d8f}}
  template:
    metadata: {labels: {app: web, pod-template-hash: 5d8f}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
`
	serviceDoc = `
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
`
	jobDoc = `
metadata: {name: pi, namespace: default, uid: 6f1f3c3e-0000-4000-8000-000000000001}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl:5.34.0, command: [perl, -Mbignum=bpi, -wle, print bpi(200)]}]
`
	cronJobDoc = `
metadata: {name: hello, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: hello, image: busybox:1.36}]
`
	hpaDoc = `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
`
	ingressDoc = `
metadata: {name: web, namespace: default}
spec:
  ingressClassName: nginx
  rules:
  - host: web.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
  tls: [{hosts: [web.example.com], secretName: web-tls}]
`
	networkPolicyDoc = `
metadata: {name: allow-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: 80}, {port: 8000, endPort: 8100}]
`
	endpointSliceDoc = `
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.1.2.3], conditions: {ready: true}}]
ports: [{name: http, port: 80}]
`
	eventDoc = `
metadata: {name: web.17a8, namespace: default}
involvedObject: {kind: Pod, name: web, namespace: default}
reason: Started
message: Started container web
type: Normal
`
)

type createCase struct {
	name string
	obj  runtime.Object
	want []want
}

func TestValidateCreate(t *testing.T) {
	var cases []createCase
	for _, group := range []func(*testing.T) []createCase{
		podCases, workloadCases, serviceCases, configCases, batchCases, autoscalingCases, networkingCases, otherCases,
	} {
		cases = append(cases, group(t)...)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateCreate(tc.obj), tc.want)
		})
	}
}

func podCases(t *testing.T) []createCase {
	pod := func(m ...func(*corev1.Pod)) *corev1.Pod { return build[corev1.Pod](t, podDoc, m...) }
	c0 := "spec.containers[0]"
	return []createCase{
		{name: "pod/valid", obj: pod()},
		{name: "pod/invalid name", obj: pod(func(p *corev1.Pod) { p.Name = "Foo_bar" }),
			want: []want{invalid("metadata.name", `Invalid value: "Foo_bar": a lowercase RFC 1123 subdomain must consist of`)}},
		{name: "pod/no name", obj: pod(func(p *corev1.Pod) { p.Name = "" }),
			want: []want{required("metadata.name")}},
		{name: "pod/no namespace", obj: pod(func(p *corev1.Pod) { p.Namespace = "" }),
			want: []want{required("metadata.namespace")}},
		{name: "pod/invalid label key", obj: pod(func(p *corev1.Pod) { p.Labels["bad key"] = "x" }),
			want: []want{invalid("metadata.labels")}},
		{name: "pod/invalid label value", obj: pod(func(p *corev1.Pod) { p.Labels["app"] = "-web" }),
			want: []want{invalid("metadata.labels")}},
		{name: "pod/annotations too large", obj: pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}), want: []want{tooLong("metadata.annotations")}},
		{name: "pod/unqualified finalizer", obj: pod(func(p *corev1.Pod) { p.Finalizers = []string{"cleanup"} }),
			want: []want{invalid("metadata.finalizers[0]")}},
		{name: "pod/no containers", obj: pod(func(p *corev1.Pod) { p.Spec.Containers = nil }),
			want: []want{required("spec.containers")}},
		{name: "pod/duplicate container names", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "web", Image: "busybox"})
		}), want: []want{duplicate("spec.containers[1].name")}},
		{name: "pod/container name not a DNS label", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web" }),
			want: []want{invalid(c0+".name", "a lowercase RFC 1123 label must consist of")}},
		{name: "pod/no image", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			want: []want{required(c0 + ".image")}},
		{name: "pod/image with whitespace", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }),
			want: []want{invalid(c0+".image", "must not have leading or trailing whitespace")}},
		{name: "pod/port out of range", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }),
			want: []want{invalid(c0+".ports[0].containerPort", "must be between 1 and 65535, inclusive")}},
		{name: "pod/unsupported port protocol", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "ICMP" }),
			want: []want{unsupported(c0 + ".ports[0].protocol")}},
		{name: "pod/unsupported restart policy", obj: pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			want: []want{unsupported("spec.restartPolicy")}},
		{name: "pod/env name with equals sign", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "A=B" }),
			want: []want{invalid(c0 + ".env[0].name")}},
		{name: "pod/env name relaxed rule", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "1.weird-but:ok" })},
		{name: "pod/env value and source", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env[0].ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}
		}), want: []want{invalid(c0+".env[0].valueFrom", "may not be specified when `value` is not empty")}},
		{name: "pod/duplicate volume names", obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "cfg"})
		}), want: []want{duplicate("spec.volumes[1].name")}},
		{name: "pod/mount of a missing volume", obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "data" }),
			want: []want{notFound(c0 + ".volumeMounts[0].name")}},
		{name: "pod/volume with two sources", obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes[0].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}), want: []want{forbidden("spec.volumes[0].configMap"), notFound(c0 + ".volumeMounts[0].name")}},
		{name: "pod/requests above limits", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}), want: []want{invalid(c0+".resources.requests", "must be less than or equal to cpu limit of 500m")}},
		{name: "pod/unknown resource", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits["gpu"] = resource.MustParse("1")
		}), want: []want{invalid(c0+".resources.limits[gpu]", "must be a standard resource for containers"), invalid(c0 + ".resources.requests[gpu]")}},
		{name: "pod/probe with two handlers", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.Exec = &corev1.ExecAction{Command: []string{"true"}}
		}), want: []want{forbidden(c0 + ".readinessProbe.httpGet")}},
		{name: "pod/probe without handler", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{}
		}), want: []want{required(c0 + ".livenessProbe")}},
		{name: "pod/liveness success threshold", obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, SuccessThreshold: 2}
		}), want: []want{invalid(c0+".livenessProbe.successThreshold", "must be 1")}},
		{name: "pod/ephemeral containers on create", obj: pod(func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}), want: []want{forbidden("spec.ephemeralContainers")}},
		{name: "pod/toleration with value and Exists", obj: pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}), want: []want{invalid("spec.tolerations[0].operator")}},
		{name: "pod/dnsPolicy None without config", obj: pod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }),
			want: []want{required("spec.dnsConfig")}},
		{name: "pod/init container with probe", obj: pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}), want: []want{forbidden("spec.initContainers[0].readinessProbe")}},
		{name: "pod/sidecar init container with probe", obj: pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		})},
	}
}

func workloadCases(t *testing.T) []createCase {
	deploy := func(m ...func(*appsv1.Deployment)) *appsv1.Deployment {
		return build[appsv1.Deployment](t, deploymentDoc, m...)
	}
	sts := func(m ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		return build[appsv1.StatefulSet](t, statefulSetDoc, m...)
	}
	ds := func(m ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
		return build[appsv1.DaemonSet](t, daemonSetDoc, m...)
	}
	rs := func(m ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
		return build[appsv1.ReplicaSet](t, replicaSetDoc, m...)
	}
	rollingUpdate := func(surge, unavailable intstr.IntOrString) func(*appsv1.Deployment) {
		return func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}
		}
	}
	return []createCase{
		{name: "deployment/valid", obj: deploy()},
		{name: "deployment/no selector", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Selector = nil }),
			want: []want{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{name: "deployment/selector does not match", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels["app"] = "api" }),
			want: []want{invalid("spec.template.metadata.labels", "`selector` does not match template `labels`")}},
		{name: "deployment/empty selector", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels = nil }),
			want: []want{invalid("spec.selector", "empty selector is invalid for deployment")}},
		{name: "deployment/negative replicas", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](-1) }),
			want: []want{invalid("spec.replicas", "must be greater than or equal to 0")}},
		{name: "deployment/surge and unavailable both zero", obj: deploy(rollingUpdate(intstr.FromInt32(0), intstr.FromString("0%"))),
			want: []want{invalid("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")}},
		{name: "deployment/unavailable above 100%", obj: deploy(rollingUpdate(intstr.FromInt32(1), intstr.FromString("110%"))),
			want: []want{invalid("spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%")}},
		{name: "deployment/surge not a percentage", obj: deploy(rollingUpdate(intstr.FromString("20percent"), intstr.FromInt32(1))),
			want: []want{invalid("spec.strategy.rollingUpdate.maxSurge", "a valid percent string must be")}},
		{name: "deployment/recreate with rolling update", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}), want: []want{forbidden("spec.strategy.rollingUpdate")}},
		{name: "deployment/template restart policy", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			want: []want{unsupported("spec.template.spec.restartPolicy")}},
		{name: "deployment/progress deadline not above min ready", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}), want: []want{invalid("spec.progressDeadlineSeconds", "must be greater than minReadySeconds")}},
		{name: "deployment/template label error path", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Labels["bad key"] = "x" }),
			want: []want{invalid("spec.template.labels")}},
		{name: "replicaset/valid", obj: rs()},
		{name: "replicaset/active deadline", obj: rs(func(r *appsv1.ReplicaSet) { r.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](10) }),
			want: []want{forbidden("spec.template.spec.activeDeadlineSeconds")}},
		{name: "statefulset/valid", obj: sts()},
		{name: "statefulset/mount of neither volume nor claim", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts[0].Name = "logs"
		}), want: []want{notFound("spec.template.spec.containers[0].volumeMounts[0].name")}},
		{name: "statefulset/name must be a DNS label", obj: sts(func(s *appsv1.StatefulSet) { s.Name = "db.primary" }),
			want: []want{invalid("metadata.name")}},
		{name: "statefulset/unknown pod management policy", obj: sts(func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" }),
			want: []want{invalid("spec.podManagementPolicy", "must be 'OrderedReady' or 'Parallel'")}},
		{name: "statefulset/claim template without storage", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil
		}), want: []want{required("spec.volumeClaimTemplates[0].spec.resources[storage]")}},
		{name: "daemonset/valid", obj: ds()},
		{name: "daemonset/surge and unavailable both set", obj: ds(func(d *appsv1.DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(1))}
		}), want: []want{invalid("spec.updateStrategy.rollingUpdate.maxSurge")}},
		{name: "daemonset/unknown update strategy", obj: ds(func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy.Type = "Sometimes" }),
			want: []want{unsupported("spec.updateStrategy")}},
	}
}

func serviceCases(t *testing.T) []createCase {
	svc := func(m ...func(*corev1.Service)) *corev1.Service { return build[corev1.Service](t, serviceDoc, m...) }
	return []createCase{
		{name: "service/valid", obj: svc()},
		{name: "service/name may start with a digit", obj: svc(func(s *corev1.Service) { s.Name = "1web" })},
		{name: "service/name with dots", obj: svc(func(s *corev1.Service) { s.Name = "web.example" }),
			want: []want{invalid("metadata.name", "must not contain dots")}},
		{name: "service/name with capitals", obj: svc(func(s *corev1.Service) { s.Name = "Web" }),
			want: []want{invalid("metadata.name", "a lowercase RFC 1123 label must consist of")}},
		{name: "service/no ports", obj: svc(func(s *corev1.Service) { s.Spec.Ports = nil }),
			want: []want{required("spec.ports")}},
		{name: "service/headless without ports", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = nil
			s.Spec.ClusterIP = corev1.ClusterIPNone
		})},
		{name: "service/external name without ports", obj: svc(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}
		})},
		{name: "service/external name missing", obj: svc(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}
		}), want: []want{required("spec.externalName")}},
		{name: "service/unnamed ports", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 443})
		}), want: []want{required("spec.ports[0].name"), required("spec.ports[1].name")}},
		{name: "service/duplicate port names", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "http", Port: 8080}}
		}), want: []want{duplicate("spec.ports[1].name")}},
		{name: "service/duplicate ports", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}), want: []want{duplicate("spec.ports[1]")}},
		{name: "service/port zero", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 0; s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) }),
			want: []want{invalid("spec.ports[0].port")}},
		{name: "service/unknown type", obj: svc(func(s *corev1.Service) { s.Spec.Type = "Bogus" }),
			want: []want{unsupported("spec.type")}},
		// The node port range is configurable: the allocator judges it.
		{name: "service/node port outside the default range", obj: svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 8080
		})},
		{name: "service/node port on cluster IP", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: []want{forbidden("spec.ports[0].nodePort")}},
		{name: "service/allocated node port", obj: svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 31000
		})},
		{name: "service/headless load balancer", obj: svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}), want: []want{invalid("spec.clusterIPs[0]")}},
		{name: "service/invalid cluster IP", obj: svc(func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.300" }),
			want: []want{invalid("spec.clusterIPs[0]")}},
		{name: "service/cluster IP of the wrong family", obj: svc(func(s *corev1.Service) {
			s.Spec.ClusterIP = "fd00::10"
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}), want: []want{invalid("spec.clusterIPs[0]", "expected an IPv4 value")}},
		{name: "service/client IP affinity timeout", obj: svc(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](0)}}
		}), want: []want{invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds")}},
		{name: "service/external traffic policy on cluster IP", obj: svc(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), want: []want{invalid("spec.externalTrafficPolicy")}},
	}
}

func configCases(t *testing.T) []createCase {
	cm := func(data map[string]string, binary map[string][]byte) *corev1.ConfigMap {
		return build[corev1.ConfigMap](t, `metadata: {name: cfg, namespace: default}`, func(c *corev1.ConfigMap) {
			c.Data, c.BinaryData = data, binary
		})
	}
	secret := func(typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
		return build[corev1.Secret](t, `metadata: {name: creds, namespace: default}`, func(s *corev1.Secret) {
			s.Type, s.Data = typ, data
		})
	}
	return []createCase{
		{name: "configmap/valid", obj: cm(map[string]string{"app.conf": "x", "KEY_1": "y"}, map[string][]byte{"logo.png": {1}})},
		{name: "configmap/invalid key", obj: cm(map[string]string{"a b": "x"}, nil),
			want: []want{invalid("data[a b]", "a valid config key must consist of alphanumeric characters")}},
		{name: "configmap/key in data and binaryData", obj: cm(map[string]string{"k": "x"}, map[string][]byte{"k": {1}}),
			want: []want{invalid("data[k]", "duplicate of key present in binaryData")}},
		{name: "configmap/too large", obj: cm(map[string]string{"a": strings.Repeat("x", 1<<20), "b": "y"}, nil),
			want: []want{tooLong("[]")}},
		{name: "configmap/exactly 1MiB", obj: cm(map[string]string{"a": strings.Repeat("x", 1<<20)}, nil)},
		{name: "secret/valid", obj: secret("", map[string][]byte{"password": []byte("hunter2")})},
		{name: "secret/too large", obj: secret("", map[string][]byte{"blob": make([]byte, 1<<20+1)}),
			want: []want{tooLong("data")}},
		{name: "secret/tls without keys", obj: secret(corev1.SecretTypeTLS, nil),
			want: []want{required("data[tls.crt]"), required("data[tls.key]")}},
		{name: "secret/docker config not JSON", obj: secret(corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}),
			want: []want{invalid("data[.dockerconfigjson]")}},
		{name: "secret/invalid key from stringData", obj: build[corev1.Secret](t, `
metadata: {name: creds, namespace: default}
stringData: {"bad/key": x}
`), want: []want{invalid("data[bad/key]")}},
	}
}

func batchCases(t *testing.T) []createCase {
	job := func(m ...func(*batchv1.Job)) *batchv1.Job { return build[batchv1.Job](t, jobDoc, m...) }
	cron := func(m ...func(*batchv1.CronJob)) *batchv1.CronJob { return build[batchv1.CronJob](t, cronJobDoc, m...) }
	schedule := func(s string) func(*batchv1.CronJob) { return func(c *batchv1.CronJob) { c.Spec.Schedule = s } }
	return []createCase{
		{name: "job/valid", obj: job()},
		{name: "job/no restart policy", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			want: []want{required("spec.template.spec.restartPolicy", `valid values: "OnFailure", "Never"`)}},
		{name: "job/restart policy Always", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }),
			want: []want{required("spec.template.spec.restartPolicy")}},
		{name: "job/no uid yet and no selector", obj: job(func(j *batchv1.Job) { j.UID = "" }),
			want: []want{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{name: "job/manual selector", obj: job(func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
		})},
		{name: "job/selector without manualSelector", obj: job(func(j *batchv1.Job) {
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
		}), want: []want{invalid("spec.selector", "`selector` not auto-generated")}},
		{name: "job/negative parallelism", obj: job(func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](-1) }),
			want: []want{invalid("spec.parallelism")}},
		{name: "job/indexed without completions", obj: job(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptr.To[int32](2)
		}), want: []want{required("spec.completions")}},
		{name: "job/pod failure policy needs Never", obj: job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
		}), want: []want{invalid("spec.template.spec.restartPolicy")}},
		{name: "cronjob/valid", obj: cron()},
		{name: "cronjob/descriptor", obj: cron(schedule("@hourly"))},
		{name: "cronjob/every", obj: cron(schedule("@every 1h30m"))},
		{name: "cronjob/names and steps", obj: cron(schedule("0 9-17/2 ? JAN-jun mon,wed,fri"))},
		{name: "cronjob/not a schedule", obj: cron(schedule("foo")),
			want: []want{invalid("spec.schedule", "expected exactly 5 fields, found 1: [foo]")}},
		{name: "cronjob/six fields", obj: cron(schedule("0 0 * * * *")),
			want: []want{invalid("spec.schedule", "expected exactly 5 fields, found 6")}},
		{name: "cronjob/minute out of range", obj: cron(schedule("61 * * * *")),
			want: []want{invalid("spec.schedule", "end of range (61) above maximum (59): 61")}},
		{name: "cronjob/zero step", obj: cron(schedule("*/0 * * * *")),
			want: []want{invalid("spec.schedule", "step of range should be a positive number")}},
		{name: "cronjob/unknown descriptor", obj: cron(schedule("@fortnightly")),
			want: []want{invalid("spec.schedule", "unrecognized descriptor: @fortnightly")}},
		{name: "cronjob/time zone in schedule", obj: cron(schedule("TZ=UTC 0 0 * * *")),
			want: []want{invalid("spec.schedule", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")}},
		{name: "cronjob/time zone prefix without schedule", obj: cron(schedule("TZ=UTC")),
			want: []want{invalid("spec.schedule", "bad location"), invalid("spec.schedule", "cannot use TZ")}},
		{name: "cronjob/time zone field", obj: cron(func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Europe/Berlin") })},
		{name: "cronjob/unknown time zone", obj: cron(func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Mars/Olympus_Mons") }),
			want: []want{invalid("spec.timeZone", "unknown time zone")}},
		{name: "cronjob/name too long", obj: cron(func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }),
			want: []want{invalid("metadata.name", "must be no more than 52 characters")}},
		{name: "cronjob/job template selector", obj: cron(func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}), want: []want{invalid("spec.jobTemplate.spec.selector", "`selector` will be auto-generated")}},
		{name: "cronjob/unknown concurrency policy", obj: cron(func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }),
			want: []want{unsupported("spec.concurrencyPolicy")}},
	}
}

func autoscalingCases(t *testing.T) []createCase {
	hpa := func(m ...func(*autoscalingv2.HorizontalPodAutoscaler)) *autoscalingv2.HorizontalPodAutoscaler {
		return build[autoscalingv2.HorizontalPodAutoscaler](t, hpaDoc, m...)
	}
	v1 := func(m ...func(*autoscalingv1.HorizontalPodAutoscaler)) *autoscalingv1.HorizontalPodAutoscaler {
		return build[autoscalingv1.HorizontalPodAutoscaler](t, `
metadata: {name: web, namespace: default}
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 4, targetCPUUtilizationPercentage: 60}
`, m...)
	}
	return []createCase{
		{name: "hpa/valid", obj: hpa()},
		{name: "hpa/min replicas zero", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](0) }),
			want: []want{invalid("spec.minReplicas", "must be greater than or equal to 1")}},
		{name: "hpa/max below min", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](6) }),
			want: []want{invalid("spec.maxReplicas", "must be greater than or equal to `minReplicas`")}},
		{name: "hpa/no target name", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Name = "" }),
			want: []want{required("spec.scaleTargetRef.name")}},
		{name: "hpa/metric source missing", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Type = autoscalingv2.PodsMetricSourceType
		}), want: []want{required("spec.metrics[0].pods")}},
		{name: "hpa/two metric sources", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Pods = &autoscalingv2.PodsMetricSource{}
		}), want: []want{forbidden("spec.metrics[0].pods")}},
		{name: "hpa/policy period zero", obj: hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1}},
			}}
		}), want: []want{invalid("spec.behavior.scaleUp.policies[0].periodSeconds", "must be greater than zero")}},
		{name: "hpa/v1 valid", obj: v1()},
		{name: "hpa/v1 zero cpu target", obj: v1(func(h *autoscalingv1.HorizontalPodAutoscaler) {
			h.Spec.TargetCPUUtilizationPercentage = ptr.To[int32](0)
		}), want: []want{invalid("spec.metrics[0].resource.target.averageUtilization", "must be greater than 0")}},
	}
}

func networkingCases(t *testing.T) []createCase {
	ing := func(m ...func(*networkingv1.Ingress)) *networkingv1.Ingress {
		return build[networkingv1.Ingress](t, ingressDoc, m...)
	}
	np := func(m ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
		return build[networkingv1.NetworkPolicy](t, networkPolicyDoc, m...)
	}
	path0 := "spec.rules[0].http.paths[0]"
	return []createCase{
		{name: "ingress/valid", obj: ing()},
		{name: "ingress/no path type", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil }),
			want: []want{required(path0 + ".pathType")}},
		{name: "ingress/relative path", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "api" }),
			want: []want{invalid(path0+".path", "must be an absolute path")}},
		{name: "ingress/implementation specific without path", obj: ing(func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].PathType = ptr.To(networkingv1.PathTypeImplementationSpecific)
			i.Spec.Rules[0].HTTP.Paths[0].Path = ""
		})},
		{name: "ingress/path with double slash", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "/a//b" }),
			want: []want{invalid(path0+".path", "must not contain '//'")}},
		{name: "ingress/host is an IP", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }),
			want: []want{invalid("spec.rules[0].host", "must be a DNS name, not an IP address")}},
		{name: "ingress/wildcard host", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.com" })},
		{name: "ingress/nothing to route", obj: ing(func(i *networkingv1.Ingress) { i.Spec.Rules = nil }),
			want: []want{invalid("spec", "either `defaultBackend` or `rules` must be specified")}},
		{name: "ingress/port name and number", obj: ing(func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name = "http"
		}), want: []want{invalid(path0+".backend", "cannot set both port name & port number")}},
		{name: "ingressclass/valid", obj: build[networkingv1.IngressClass](t, `
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
`)},
		{name: "ingressclass/controller without domain", obj: build[networkingv1.IngressClass](t, `
metadata: {name: nginx}
spec: {controller: nginx}
`), want: []want{invalid("spec.controller")}},
		{name: "ingressclass/namespace scope without namespace", obj: build[networkingv1.IngressClass](t, `
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx, parameters: {kind: Config, name: c, scope: Namespace}}
`), want: []want{required("spec.parameters.namespace")}},
		{name: "networkpolicy/valid", obj: np()},
		{name: "networkpolicy/port zero", obj: np(func(n *networkingv1.NetworkPolicy) { n.Spec.Ingress[0].Ports[0].Port = ptr.To(intstr.FromInt32(0)) }),
			want: []want{invalid("spec.ingress[0].ports[0].port")}},
		{name: "networkpolicy/end port below port", obj: np(func(n *networkingv1.NetworkPolicy) { n.Spec.Ingress[0].Ports[1].EndPort = ptr.To[int32](7000) }),
			want: []want{invalid("spec.ingress[0].ports[1].endPort", "must be greater than or equal to `port`")}},
		{name: "networkpolicy/unsupported protocol", obj: np(func(n *networkingv1.NetworkPolicy) {
			n.Spec.Ingress[0].Ports[0].Protocol = ptr.To(corev1.Protocol("ICMP"))
		}), want: []want{unsupported("spec.ingress[0].ports[0].protocol")}},
		{name: "networkpolicy/except outside cidr", obj: np(func(n *networkingv1.NetworkPolicy) {
			n.Spec.Ingress[0].From[1].IPBlock.Except = []string{"192.168.0.0/16"}
		}), want: []want{invalid("spec.ingress[0].from[1].ipBlock.except[0]", "must be a strict subset of `cidr`")}},
		{name: "networkpolicy/empty peer", obj: np(func(n *networkingv1.NetworkPolicy) { n.Spec.Ingress[0].From[0] = networkingv1.NetworkPolicyPeer{} }),
			want: []want{required("spec.ingress[0].from[0]")}},
		{name: "networkpolicy/unknown policy type", obj: np(func(n *networkingv1.NetworkPolicy) {
			n.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"}
		}), want: []want{unsupported("spec.policyTypes[0]")}},
		{name: "endpointslice/valid", obj: build[discoveryv1.EndpointSlice](t, endpointSliceDoc)},
		{name: "endpointslice/no address type", obj: build[discoveryv1.EndpointSlice](t, endpointSliceDoc, func(e *discoveryv1.EndpointSlice) { e.AddressType = "" }),
			want: []want{required("addressType")}},
		{name: "endpointslice/unknown address type", obj: build[discoveryv1.EndpointSlice](t, endpointSliceDoc, func(e *discoveryv1.EndpointSlice) { e.AddressType = "IPv5" }),
			want: []want{unsupported("addressType")}},
		{name: "endpointslice/address of the wrong family", obj: build[discoveryv1.EndpointSlice](t, endpointSliceDoc, func(e *discoveryv1.EndpointSlice) {
			e.Endpoints[0].Addresses = []string{"fd00::1"}
		}), want: []want{invalid("endpoints[0].addresses[0]")}},
		{name: "endpointslice/endpoint without addresses", obj: build[discoveryv1.EndpointSlice](t, endpointSliceDoc, func(e *discoveryv1.EndpointSlice) {
			e.Endpoints[0].Addresses = nil
		}), want: []want{required("endpoints[0].addresses")}},
	}
}

func otherCases(t *testing.T) []createCase {
	return []createCase{
		{name: "namespace/valid", obj: build[corev1.Namespace](t, `metadata: {name: team-a}`)},
		{name: "namespace/name with dots", obj: build[corev1.Namespace](t, `metadata: {name: team.a}`),
			want: []want{invalid("metadata.name", "must not contain dots")}},
		{name: "namespace/name with underscore", obj: build[corev1.Namespace](t, `metadata: {name: team_a}`),
			want: []want{invalid("metadata.name", "a lowercase RFC 1123 label must consist of")}},
		{name: "namespace/namespaced namespace", obj: build[corev1.Namespace](t, `metadata: {name: team-a, namespace: default}`),
			want: []want{forbidden("metadata.namespace")}},
		{name: "serviceaccount/valid", obj: build[corev1.ServiceAccount](t, `metadata: {name: builder, namespace: ci}`)},
		{name: "serviceaccount/invalid name", obj: build[corev1.ServiceAccount](t, `metadata: {name: Builder, namespace: ci}`),
			want: []want{invalid("metadata.name")}},
		{name: "node/valid", obj: build[corev1.Node](t, `
metadata: {name: worker-1.example.com}
spec: {podCIDRs: [10.244.1.0/24], taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}
`)},
		{name: "node/unknown taint effect", obj: build[corev1.Node](t, `
metadata: {name: worker-1}
spec: {taints: [{key: dedicated, effect: Never}]}
`), want: []want{unsupported("spec.taints[0].effect")}},
		{name: "endpoints/valid", obj: build[corev1.Endpoints](t, `
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.1.2.3}], ports: [{port: 80}]}]
`)},
		{name: "endpoints/loopback address", obj: build[corev1.Endpoints](t, `
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 127.0.0.1}], ports: [{port: 80}]}]
`), want: []want{invalid("subsets[0].addresses[0].ip", "loopback")}},
		{name: "event/valid", obj: build[corev1.Event](t, eventDoc)},
		{name: "event/namespace mismatch", obj: build[corev1.Event](t, eventDoc, func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" }),
			want: []want{invalid("involvedObject.namespace", "does not match event.namespace")}},
		{name: "lease/valid", obj: build[coordinationv1.Lease](t, `
metadata: {name: kube-scheduler, namespace: kube-system}
spec: {holderIdentity: node-1, leaseDurationSeconds: 15}
`)},
		{name: "lease/zero duration", obj: build[coordinationv1.Lease](t, `
metadata: {name: kube-scheduler, namespace: kube-system}
spec: {leaseDurationSeconds: 0}
`), want: []want{invalid("spec.leaseDurationSeconds", "must be greater than 0")}},
		{name: "pdb/valid", obj: build[policyv1.PodDisruptionBudget](t, `
metadata: {name: web, namespace: default}
spec: {minAvailable: 50%, selector: {matchLabels: {app: web}}}
`)},
		{name: "pdb/both bounds", obj: build[policyv1.PodDisruptionBudget](t, `
metadata: {name: web, namespace: default}
spec: {minAvailable: 1, maxUnavailable: 1}
`), want: []want{invalid("spec", "minAvailable and maxUnavailable cannot be both set")}},
		{name: "pdb/percentage above 100", obj: build[policyv1.PodDisruptionBudget](t, `
metadata: {name: web, namespace: default}
spec: {maxUnavailable: 150%}
`), want: []want{invalid("spec.maxUnavailable", "must not be greater than 100%")}},
	}
}

func TestValidateCreateIgnoresNilAndUnknown(t *testing.T) {
	for _, obj := range []runtime.Object{nil, (*corev1.Pod)(nil), (*autoscalingv1.HorizontalPodAutoscaler)(nil), &corev1.PodList{}} {
		if errs := ValidateCreate(obj); len(errs) != 0 {
			t.Errorf("ValidateCreate(%T) = %v", obj, errs)
		}
	}
}
