package e2e

import (
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// One minimal valid object of every served kind.
const everyKind = `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Event
metadata: {name: ev}
involvedObject: {kind: Pod, name: p, namespace: hdr}
reason: Test
message: hello
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec: {selector: {matchLabels: {a: c}}, template: {metadata: {labels: {a: c}}, spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts}
spec: {serviceName: s, selector: {matchLabels: {a: d}}, template: {metadata: {labels: {a: d}}, spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec: {selector: {matchLabels: {a: e}}, template: {metadata: {labels: {a: e}}, spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: []
---
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec: {schedule: "*/5 * * * *", jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}]}}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}, maxReplicas: 3}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ing}
spec: {defaultBackend: {service: {name: s, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ic}
spec: {controller: skiff.dev/ingress}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec: {podSelector: {}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l}
spec: {holderIdentity: me}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb}
spec: {minAvailable: 1, selector: {matchLabels: {a: b}}}
`

// TestGetHeaders checks, for every kind, the header line `kubectl get`
// prints, plain and -o wide, against upstream Kubernetes's printers.
func TestGetHeaders(t *testing.T) {
	p := testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t))
	k := kube{t, p}
	k.run("", "create", "namespace", "hdr")
	k.run(everyKind, "apply", "-n", "hdr", "-f", "-")
	cases := []struct{ resource, header, wide string }{
		{"namespaces", "NAME STATUS AGE", "NAME STATUS AGE"},
		{"pods", "NAME READY STATUS RESTARTS AGE", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"},
		{"services", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"},
		{"endpoints", "NAME ENDPOINTS AGE", "NAME ENDPOINTS AGE"},
		{"configmaps", "NAME DATA AGE", "NAME DATA AGE"},
		{"secrets", "NAME TYPE DATA AGE", "NAME TYPE DATA AGE"},
		{"serviceaccounts", "NAME SECRETS AGE", "NAME SECRETS AGE"},
		{"nodes", "NAME STATUS ROLES AGE VERSION", "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"},
		{"events", "LAST SEEN TYPE REASON OBJECT MESSAGE", "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"},
		{"deployments", "NAME READY UP-TO-DATE AVAILABLE AGE", "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"},
		{"replicasets", "NAME DESIRED CURRENT READY AGE", "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"},
		{"statefulsets", "NAME READY AGE", "NAME READY AGE CONTAINERS IMAGES"},
		{"daemonsets", "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE", "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE CONTAINERS IMAGES SELECTOR"},
		{"endpointslices", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"},
		{"jobs", "NAME STATUS COMPLETIONS DURATION AGE", "NAME STATUS COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR"},
		{"cronjobs", "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE", "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR"},
		{"horizontalpodautoscalers", "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE", "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE"},
		{"ingresses", "NAME CLASS HOSTS ADDRESS PORTS AGE", "NAME CLASS HOSTS ADDRESS PORTS AGE"},
		{"ingressclasses", "NAME CONTROLLER PARAMETERS AGE", "NAME CONTROLLER PARAMETERS AGE"},
		{"networkpolicies", "NAME POD-SELECTOR AGE", "NAME POD-SELECTOR AGE"},
		{"leases", "NAME HOLDER AGE", "NAME HOLDER AGE"},
		{"poddisruptionbudgets", "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE", "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			if got := header(k.run("", "get", tc.resource, "-n", "hdr")); got != tc.header {
				t.Errorf("kubectl get %s header\n got  %q\n want %q", tc.resource, got, tc.header)
			}
			if got := header(k.run("", "get", tc.resource, "-n", "hdr", "-o", "wide")); got != tc.wide {
				t.Errorf("kubectl get %s -o wide header\n got  %q\n want %q", tc.resource, got, tc.wide)
			}
		})
	}
}

// header returns the first line with its column gaps folded to one space.
func header(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	return strings.Join(strings.Fields(line), " ")
}
