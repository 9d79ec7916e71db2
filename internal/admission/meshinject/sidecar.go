package meshinject

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Probe timing. The startup probe is Istio's for native sidecars: every
// second for up to ten minutes (the pod's other containers wait for it).
// The readiness probe looks every 2 s rather than Istio's 15 s: its
// first look comes one period after the startup probe passed, and the
// pod is not Ready (nor in its Services' endpoints) before it.
const (
	startupPeriod    = 1
	startupFailures  = 600
	readinessPeriod  = 2
	readinessFailure = 4
	probeTimeout     = 3
)

// Sidecar is the istio-proxy container injection adds: a native sidecar
// running the node's builtin proxy image as 1337:1337 with no
// capabilities (capture is the node's job, not the pod's), ready when
// :15021/healthz/ready answers.
func Sidecar() corev1.Container {
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz/ready", Port: intstr.FromInt32(meshconfig.HealthPort), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: probeTimeout, SuccessThreshold: 1,
		}
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	return corev1.Container{
		Name:            meshconfig.ContainerName,
		Image:           meshconfig.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
		Env: []corev1.EnvVar{
			field("POD_NAME", "metadata.name"),
			field("POD_NAMESPACE", "metadata.namespace"),
			field("INSTANCE_IP", "status.podIP"),
			field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
			field("HOST_IP", "status.hostIP"),
		},
		Ports: []corev1.ContainerPort{
			{Name: "http-stats", ContainerPort: meshconfig.StatsPort, Protocol: corev1.ProtocolTCP},
		},
		// Small requests; Istio's limits, so that a quota on limits
		// admits the pod.
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("40Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("1Gi"),
			},
		},
		VolumeMounts:   []corev1.VolumeMount{{Name: meshconfig.VolumeName, MountPath: meshconfig.MountPath}},
		StartupProbe:   probe(startupPeriod, startupFailures),
		ReadinessProbe: probe(readinessPeriod, readinessFailure),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](meshconfig.ProxyUID),
			RunAsGroup:               ptr.To[int64](meshconfig.ProxyGID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}
