package defaults

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Each case is an object as a user would send it and the object as
// kube-apiserver would store it, both in the YAML kubectl shows.
var defaultCases = []struct {
	name    string
	newObj  func() runtime.Object
	in, out string
}{
	{
		name:   "deployment",
		newObj: func() runtime.Object { return &appsv1.Deployment{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 80, protocol: TCP}]
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "deployment with recreate strategy gets no rolling update",
		newObj: func() runtime.Object { return &appsv1.Deployment{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  strategy: {type: Recreate}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Always
      containers: [{name: web, image: nginx}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: web}}
  strategy: {type: Recreate}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        imagePullPolicy: Always
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "pod",
		newObj: func() runtime.Object { return &corev1.Pod{} },
		in: `
metadata: {name: p, namespace: default}
spec:
  containers:
  - name: app
    image: busybox:latest
    env:
    - name: NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    resources:
      limits: {cpu: "1", memory: 128Mi}
      requests: {cpu: 100m}
    readinessProbe:
      httpGet: {port: 8080}
    livenessProbe:
      exec: {command: ["true"]}
      periodSeconds: 5
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes:
  - name: cfg
    configMap: {name: cfg}
  - name: creds
    secret: {secretName: creds}
  - name: scratch
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  - name: token
    projected:
      sources: [{serviceAccountToken: {path: token}}]
`,
		out: `
metadata: {name: p, namespace: default}
spec:
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: Always
    env:
    - name: NODE
      valueFrom: {fieldRef: {apiVersion: v1, fieldPath: spec.nodeName}}
    resources:
      limits: {cpu: "1", memory: 128Mi}
      requests: {cpu: 100m, memory: 128Mi}
    readinessProbe:
      httpGet: {port: 8080, path: /, scheme: HTTP}
      timeoutSeconds: 1
      periodSeconds: 10
      successThreshold: 1
      failureThreshold: 3
    livenessProbe:
      exec: {command: ["true"]}
      timeoutSeconds: 1
      periodSeconds: 5
      successThreshold: 1
      failureThreshold: 3
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes:
  - name: cfg
    configMap: {name: cfg, defaultMode: 420}
  - name: creds
    secret: {secretName: creds, defaultMode: 420}
  - name: scratch
    emptyDir: {}
  - name: info
    downwardAPI:
      defaultMode: 420
      items: [{path: labels, fieldRef: {apiVersion: v1, fieldPath: metadata.labels}}]
  - name: token
    projected:
      defaultMode: 420
      sources: [{serviceAccountToken: {path: token, expirationSeconds: 3600}}]
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "pod on the host network gets host ports",
		newObj: func() runtime.Object { return &corev1.Pod{} },
		in: `
metadata: {name: p, namespace: default}
spec:
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: app
    image: registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    ports: [{containerPort: 9000, protocol: UDP}]
`,
		out: `
metadata: {name: p, namespace: default}
spec:
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: app
    image: registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 9000, hostPort: 9000, protocol: UDP}]
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  schedulerName: default-scheduler
  securityContext: {}
  terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "cluster IP service",
		newObj: func() runtime.Object { return &corev1.Service{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80}, {name: metrics, port: 9090, targetPort: metrics}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {port: 80, protocol: TCP, targetPort: 80}
  - {name: metrics, port: 9090, protocol: TCP, targetPort: metrics}
  type: ClusterIP
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
`,
	},
	{
		name:   "node port service",
		newObj: func() runtime.Object { return &corev1.Service{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080, protocol: TCP, targetPort: 80}]
  sessionAffinity: None
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
`,
	},
	{
		name:   "load balancer service with client IP affinity",
		newObj: func() runtime.Object { return &corev1.Service{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  sessionAffinity: ClientIP
  selector: {app: web}
  ports: [{port: 443, targetPort: 8443}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  selector: {app: web}
  ports: [{port: 443, protocol: TCP, targetPort: 8443}]
  allocateLoadBalancerNodePorts: true
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
`,
	},
	{
		name:   "headless service without selector",
		newObj: func() runtime.Object { return &corev1.Service{} },
		in: `
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
`,
		out: `
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  clusterIPs: [None]
  type: ClusterIP
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4]
`,
	},
	{
		name:   "external name service",
		newObj: func() runtime.Object { return &corev1.Service{} },
		in: `
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com}
`,
		out: `
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com, sessionAffinity: None}
`,
	},
	{
		name:   "job with a uid gets a generated selector",
		newObj: func() runtime.Object { return &batchv1.Job{} },
		in: `
metadata: {name: pi, namespace: default, uid: 2c1a1b6e-0000-4000-8000-000000000001}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl:5.34.0, command: [perl, -e, print 1]}]
`,
		out: `
metadata:
  name: pi
  namespace: default
  uid: 2c1a1b6e-0000-4000-8000-000000000001
  labels:
    batch.kubernetes.io/controller-uid: 2c1a1b6e-0000-4000-8000-000000000001
    batch.kubernetes.io/job-name: pi
    controller-uid: 2c1a1b6e-0000-4000-8000-000000000001
    job-name: pi
spec:
  backoffLimit: 6
  completionMode: NonIndexed
  completions: 1
  manualSelector: false
  parallelism: 1
  podReplacementPolicy: TerminatingOrFailed
  suspend: false
  selector:
    matchLabels: {batch.kubernetes.io/controller-uid: 2c1a1b6e-0000-4000-8000-000000000001}
  template:
    metadata:
      labels:
        batch.kubernetes.io/controller-uid: 2c1a1b6e-0000-4000-8000-000000000001
        batch.kubernetes.io/job-name: pi
        controller-uid: 2c1a1b6e-0000-4000-8000-000000000001
        job-name: pi
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl:5.34.0
        command: [perl, -e, print 1]
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "job before it has a uid keeps its labels and no selector",
		newObj: func() runtime.Object { return &batchv1.Job{} },
		in: `
metadata: {name: pi, namespace: default}
spec:
  parallelism: 3
  podFailurePolicy:
    rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]
  template:
    metadata: {labels: {app: pi}}
    spec:
      containers: [{name: pi, image: perl}]
`,
		out: `
metadata: {name: pi, namespace: default, labels: {app: pi}}
spec:
  backoffLimit: 6
  completionMode: NonIndexed
  manualSelector: false
  parallelism: 3
  podFailurePolicy:
    rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget, status: "True"}]}]
  podReplacementPolicy: Failed
  suspend: false
  template:
    metadata: {labels: {app: pi}}
    spec:
      containers:
      - name: pi
        image: perl
        imagePullPolicy: Always
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "cronjob",
		newObj: func() runtime.Object { return &batchv1.CronJob{} },
		in: `
metadata: {name: hello, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: hello, image: busybox:1.36}]
`,
		out: `
metadata: {name: hello, namespace: default}
spec:
  schedule: "*/5 * * * *"
  concurrencyPolicy: Allow
  suspend: false
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox:1.36
            imagePullPolicy: IfNotPresent
            terminationMessagePath: /dev/termination-log
            terminationMessagePolicy: File
          dnsPolicy: ClusterFirst
          schedulerName: default-scheduler
          securityContext: {}
          terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "hpa without metrics targets 80% cpu",
		newObj: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`,
	},
	{
		name:   "hpa behavior is completed from upstream's rules",
		newObj: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 500Mi}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 60}
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 500Mi}}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies:
      - {type: Pods, value: 4, periodSeconds: 15}
      - {type: Percent, value: 100, periodSeconds: 15}
    scaleDown:
      stabilizationWindowSeconds: 60
      selectPolicy: Max
      policies:
      - {type: Percent, value: 100, periodSeconds: 15}
`,
	},
	{
		name:   "autoscaling/v1 hpa",
		newObj: func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
		in: `
metadata: {name: web, namespace: default}
spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 3}
`,
		out: `
metadata: {name: web, namespace: default}
spec: {scaleTargetRef: {kind: Deployment, name: web}, minReplicas: 1, maxReplicas: 3}
`,
	},
	{
		name:   "statefulset",
		newObj: func() runtime.Object { return &appsv1.StatefulSet{} },
		in: `
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`,
		out: `
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  revisionHistoryLimit: 10
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: postgres:16
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
      volumeMode: Filesystem
    status: {phase: Pending}
`,
	},
	{
		name:   "daemonset",
		newObj: func() runtime.Object { return &appsv1.DaemonSet{} },
		in: `
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:v1}]
`,
		out: `
metadata: {name: agent, namespace: kube-system}
spec:
  revisionHistoryLimit: 10
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: agent
        image: agent:v1
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
`,
	},
	{
		name:   "replicaset",
		newObj: func() runtime.Object { return &appsv1.ReplicaSet{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Always
      dnsPolicy: Default
      terminationGracePeriodSeconds: 5
      schedulerName: custom
      securityContext: {runAsNonRoot: true}
      containers: [{name: web, image: nginx:1.27, imagePullPolicy: Never, terminationMessagePolicy: FallbackToLogsOnError}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Always
      dnsPolicy: Default
      terminationGracePeriodSeconds: 5
      schedulerName: custom
      securityContext: {runAsNonRoot: true}
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolicy: Never
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: FallbackToLogsOnError
`,
	},
	{
		name:   "namespace",
		newObj: func() runtime.Object { return &corev1.Namespace{} },
		in:     `metadata: {name: team-a}`,
		out: `
metadata: {name: team-a, labels: {kubernetes.io/metadata.name: team-a}}
spec: {finalizers: [kubernetes]}
status: {phase: Active}
`,
	},
	{
		name:   "terminating namespace keeps its finalizers",
		newObj: func() runtime.Object { return &corev1.Namespace{} },
		in: `
metadata: {name: team-a, deletionTimestamp: "2026-01-01T00:00:00Z"}
status: {phase: Terminating}
`,
		out: `
metadata: {name: team-a, deletionTimestamp: "2026-01-01T00:00:00Z", labels: {kubernetes.io/metadata.name: team-a}}
status: {phase: Terminating}
`,
	},
	{
		name:   "secret folds stringData into data",
		newObj: func() runtime.Object { return &corev1.Secret{} },
		in: `
metadata: {name: s, namespace: default}
data: {a: YQ==}
stringData: {b: bee}
`,
		out: `
metadata: {name: s, namespace: default}
type: Opaque
data: {a: YQ==, b: YmVl}
`,
	},
	{
		name:   "network policy",
		newObj: func() runtime.Object { return &networkingv1.NetworkPolicy{} },
		in: `
metadata: {name: np, namespace: default}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}]}]
  egress: [{ports: [{port: 53, protocol: UDP}]}]
`,
		out: `
metadata: {name: np, namespace: default}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80, protocol: TCP}]}]
  egress: [{ports: [{port: 53, protocol: UDP}]}]
  policyTypes: [Ingress, Egress]
`,
	},
	{
		name:   "ingress class parameters default to cluster scope",
		newObj: func() runtime.Object { return &networkingv1.IngressClass{} },
		in: `
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx, parameters: {kind: Config, name: c}}
`,
		out: `
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx, parameters: {kind: Config, name: c, scope: Cluster}}
`,
	},
	{
		name:   "ingress is left as sent",
		newObj: func() runtime.Object { return &networkingv1.Ingress{} },
		in: `
metadata: {name: web, namespace: default}
spec:
  rules:
  - http:
      paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]
`,
		out: `
metadata: {name: web, namespace: default}
spec:
  rules:
  - http:
      paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]
`,
	},
	{
		name:   "endpoint slice ports",
		newObj: func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		in: `
metadata: {name: web-1, namespace: default}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{port: 80}]
`,
		out: `
metadata: {name: web-1, namespace: default}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: "", port: 80, protocol: TCP}]
`,
	},
	{
		name:   "endpoints ports",
		newObj: func() runtime.Object { return &corev1.Endpoints{} },
		in: `
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 80}]}]
`,
		out: `
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 80, protocol: TCP}]}]
`,
	},
	{
		name:   "node allocatable follows capacity",
		newObj: func() runtime.Object { return &corev1.Node{} },
		in: `
metadata: {name: n1}
status: {capacity: {cpu: "4", memory: 8Gi}}
`,
		out: `
metadata: {name: n1}
status: {capacity: {cpu: "4", memory: 8Gi}, allocatable: {cpu: "4", memory: 8Gi}}
`,
	},
}

func TestDefault(t *testing.T) {
	for _, tc := range defaultCases {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.newObj, tc.in)
			Default(got)
			want := decode(t, tc.newObj, tc.out)
			if g, w := toJSON(t, got), toJSON(t, want); g != w {
				t.Errorf("Default() =\n%s\nwant\n%s", g, w)
			}

			// Defaulting what is already defaulted changes nothing, so the
			// server may run it again on objects read from storage.
			again := got.DeepCopyObject()
			Default(again)
			if g, w := toJSON(t, again), toJSON(t, got); g != w {
				t.Errorf("Default() is not idempotent:\n%s\nafter a second pass, was\n%s", g, w)
			}
		})
	}
}

func TestDefaultIgnoresNilAndUnknown(t *testing.T) {
	Default(nil)
	Default((*corev1.Pod)(nil))
	Default((*appsv1.Deployment)(nil))
	Default(&corev1.PodList{})
}

func TestPullPolicy(t *testing.T) {
	cases := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"localhost:5000/team/app", corev1.PullAlways},
		{"localhost:5000/team/app:v2", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullAlways},
		{"Not/A Valid:Ref", corev1.PullIfNotPresent},
		{"", corev1.PullIfNotPresent},
	}
	for _, tc := range cases {
		if got := pullPolicyFor(tc.image); got != tc.want {
			t.Errorf("pullPolicyFor(%q) = %s, want %s", tc.image, got, tc.want)
		}
	}
}

func decode(t *testing.T, newObj func() runtime.Object, doc string) runtime.Object {
	t.Helper()
	obj := newObj()
	if err := yaml.UnmarshalStrict([]byte(strings.TrimSpace(doc)), obj); err != nil {
		t.Fatalf("decoding %T: %v", obj, err)
	}
	return obj
}

func toJSON(t *testing.T, obj any) string {
	t.Helper()
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
