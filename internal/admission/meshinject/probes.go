package meshinject

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Probe rewrite, as Istio's injector: with inbound capture and STRICT
// mTLS the kubelet's plaintext probes to app ports would be refused by
// the inbound proxy, so every app container's httpGet and tcpSocket
// liveness, readiness and startup probe becomes an httpGet on the
// sidecar's stats port (excluded from capture) at
// /app-health/<container>/livez|readyz|startupz, and the originals, with
// named ports resolved to numbers, go to the sidecar in
// ISTIO_KUBE_APP_PROBERS. The probe's timing fields stay as they were.
//
// Left alone: gRPC and exec probes (a gRPC probe would need the sidecar
// to speak the gRPC health protocol; Istio rewrites it, Skiff does not
// yet, so a meshed pod with a gRPC probe on a STRICT port fails it),
// probes of init containers (native sidecars among them), a probe whose
// named port the container does not declare, and every probe of a pod
// annotated sidecar.istio.io/rewriteAppHTTPProbers: "false".

// rewriteProbes rewrites pod's app probes and returns the originals
// (nil when there is none).
func rewriteProbes(pod *corev1.Pod) meshconfig.AppProbers {
	if pod.Annotations[meshconfig.RewriteAppProbersAnnotation] == "false" {
		return nil
	}
	var probers meshconfig.AppProbers
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
		}{
			{meshconfig.LivenessProbe, c.LivenessProbe},
			{meshconfig.ReadinessProbe, c.ReadinessProbe},
			{meshconfig.StartupProbe, c.StartupProbe},
		} {
			if p.probe == nil {
				continue
			}
			orig, ok := appProber(c, p.probe)
			if !ok {
				continue
			}
			path := meshconfig.AppHealthPath(c.Name, p.kind)
			if probers == nil {
				probers = meshconfig.AppProbers{}
			}
			probers[path] = orig
			p.probe.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(meshconfig.StatsPort), Scheme: corev1.URISchemeHTTP,
			}}
		}
	}
	return probers
}

// appProber is probe as the sidecar performs it; ok is false for a probe
// that stays as it is.
func appProber(c *corev1.Container, probe *corev1.Probe) (meshconfig.AppProber, bool) {
	out := meshconfig.AppProber{TimeoutSeconds: probe.TimeoutSeconds}
	switch {
	case probe.HTTPGet != nil:
		h := probe.HTTPGet
		port, ok := resolvePort(c, h.Port)
		if !ok {
			return out, false
		}
		g := &meshconfig.HTTPGetProbe{Path: h.Path, Port: port, Host: h.Host, Scheme: string(h.Scheme)}
		for _, hd := range h.HTTPHeaders {
			g.HTTPHeaders = append(g.HTTPHeaders, meshconfig.HTTPHeader{Name: hd.Name, Value: hd.Value})
		}
		out.HTTPGet = g
	case probe.TCPSocket != nil:
		port, ok := resolvePort(c, probe.TCPSocket.Port)
		if !ok {
			return out, false
		}
		out.TCPSocket = &meshconfig.TCPSocketProbe{Port: port, Host: probe.TCPSocket.Host}
	default:
		return out, false
	}
	return out, true
}

// resolvePort is port as a number: itself, or the container's port of
// that name (TCP), as the kubelet resolves it.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	if port.Type == intstr.Int {
		return port.IntVal, port.IntVal > 0 && port.IntVal < 65536
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// appProbersEnv is the sidecar's ISTIO_KUBE_APP_PROBERS variable for
// probers.
func appProbersEnv(probers meshconfig.AppProbers) corev1.EnvVar {
	b, _ := json.Marshal(probers) // plain strings and numbers: cannot fail
	return corev1.EnvVar{Name: meshconfig.AppProbersEnv, Value: string(b)}
}
