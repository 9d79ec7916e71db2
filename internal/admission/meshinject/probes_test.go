package meshinject_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/admission/meshinject"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// probeResult is what the golden files hold: the app containers' probes
// after injection and the sidecar's ISTIO_KUBE_APP_PROBERS, decoded.
type probeResult struct {
	Containers []probeSet            `json:"containers"`
	Init       []probeSet            `json:"initContainers,omitempty"`
	AppProbers meshconfig.AppProbers `json:"appProbers,omitempty"`
}

type probeSet struct {
	Name      string        `json:"name"`
	Liveness  *corev1.Probe `json:"livenessProbe,omitempty"`
	Readiness *corev1.Probe `json:"readinessProbe,omitempty"`
	Startup   *corev1.Probe `json:"startupProbe,omitempty"`
}

func TestProbeRewrite(t *testing.T) {
	httpGet := func(port intstr.IntOrString, path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: port, Scheme: corev1.URISchemeHTTP}}, PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	tcp := func(port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}, PeriodSeconds: 10}
	}
	web := corev1.Container{Name: "web", Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}
	cases := []struct {
		name string
		mut  func(p *corev1.Pod)
	}{
		{name: "http-readiness", mut: func(p *corev1.Pod) {
			c := web
			c.ReadinessProbe = httpGet(intstr.FromInt32(8080), "/ready")
			p.Spec.Containers = []corev1.Container{c}
		}},
		{name: "named-ports-all-kinds", mut: func(p *corev1.Pod) {
			c := web
			c.LivenessProbe = tcp(intstr.FromString("http"))
			c.ReadinessProbe = httpGet(intstr.FromString("http"), "/ready")
			c.ReadinessProbe.HTTPGet.Host = "web.local"
			c.ReadinessProbe.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}}
			c.StartupProbe = httpGet(intstr.FromInt32(9090), "/started")
			c.StartupProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
			p.Spec.Containers = []corev1.Container{c}
		}},
		{name: "left-alone", mut: func(p *corev1.Pod) {
			c := web
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}}
			c.StartupProbe = httpGet(intstr.FromString("missing"), "/") // unknown name
			udp := tcp(intstr.FromString("dns"))                        // a UDP port is no TCP port
			side := corev1.Container{Name: "init", ReadinessProbe: httpGet(intstr.FromInt32(7000), "/")}
			other := corev1.Container{Name: "other", Ports: web.Ports, LivenessProbe: udp}
			p.Spec.Containers = []corev1.Container{c, other}
			p.Spec.InitContainers = []corev1.Container{side}
		}},
		{name: "two-containers", mut: func(p *corev1.Pod) {
			a, b := web, web
			a.ReadinessProbe = httpGet(intstr.FromInt32(8080), "/a")
			b.Name = "b"
			b.LivenessProbe = tcp(intstr.FromInt32(6379))
			p.Spec.Containers = []corev1.Container{a, b}
		}},
		{name: "opted-out", mut: func(p *corev1.Pod) {
			c := web
			c.ReadinessProbe = httpGet(intstr.FromInt32(8080), "/ready")
			p.Spec.Containers = []corev1.Container{c}
			p.Annotations = map[string]string{meshconfig.RewriteAppProbersAnnotation: "false"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
			tc.mut(pod)
			meshinject.Inject(pod)
			var res probeResult
			for _, c := range pod.Spec.Containers {
				res.Containers = append(res.Containers, probeSet{c.Name, c.LivenessProbe, c.ReadinessProbe, c.StartupProbe})
			}
			for _, c := range pod.Spec.InitContainers {
				if c.Name == meshconfig.ContainerName {
					for _, e := range c.Env {
						if e.Name == meshconfig.AppProbersEnv {
							if err := json.Unmarshal([]byte(e.Value), &res.AppProbers); err != nil {
								t.Fatalf("%s is no JSON: %v", e.Name, err)
							}
						}
					}
					continue
				}
				res.Init = append(res.Init, probeSet{c.Name, c.LivenessProbe, c.ReadinessProbe, c.StartupProbe})
			}
			got, err := yaml.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "probes", tc.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
