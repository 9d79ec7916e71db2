// Package meshconfig is the contract between a node's mesh server
// (internal/mesh/control, inside the node process) and the sidecar
// proxies of that node's pods (cmd/skiff-proxy, internal/mesh/sidecar):
// where the sidecar finds its node, the ports it owns, the annotations
// injection and capture read, and the configuration document the node
// serves.
//
// The sidecar binary imports this package, so it must stay free of
// Kubernetes and Istio API imports: it holds constants and plain types.
package meshconfig

import (
	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// Where a sidecar finds its node. The node agent mounts the pod's mesh
// directory (<node data dir>/mesh/pods/<pod UID>/) at MountPath in the
// sidecar container; the node's mesh server listens on SocketName there.
const (
	PodsDir    = "mesh/pods" // under the node's data dir
	MountPath  = "/var/run/skiff-mesh"
	SocketName = "agent.sock"
	// VolumeName is the pod volume injection adds for that directory: an
	// emptyDir in the API that the node agent backs with the pod's mesh
	// directory instead of a fresh one.
	VolumeName = "skiff-mesh"
)

// The node's API on the socket (HTTP/1.1 over the unix socket):
//
//	GET  /v1/config?version=V   long poll: answers 200 with the Sidecar
//	                            document (JSON) as soon as the node's
//	                            version differs from V (at once when V is
//	                            empty), or 304 after about 30 s.
//	POST /v1/status             the sidecar reports a Status (JSON) after
//	                            each document: applied, or rejected and why.
const (
	ConfigPath = "/v1/config"
	StatusPath = "/v1/status"
)

// Ports and identity of the sidecar, as Istio's.
const (
	ContainerName = "istio-proxy"
	ProxyUID      = 1337
	ProxyGID      = 1337
	OutboundPort  = 15001 // outbound capture listener
	InboundPort   = 15006 // inbound capture listener
	AdminPort     = 15000 // 127.0.0.1 only: /config_dump
	StatsPort     = 15020 // /stats/prometheus
	HealthPort    = 15021 // /healthz/ready
)

// Image is the sidecar's image reference; every node provides it from
// its own binary (no registry involved).
const Image = "skiff.dev/proxy:builtin"

// Labels and annotations that injection and capture read, as Istio's.
const (
	InjectionLabel       = "istio-injection"         // on namespaces: enabled|disabled
	InjectAnnotation     = "sidecar.istio.io/inject" // on pods (label or annotation): "true"|"false"
	StatusAnnotation     = "sidecar.istio.io/status" // set by injection
	ExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	ExcludeInboundPorts  = "traffic.sidecar.istio.io/excludeInboundPorts"
	IncludeInboundPorts  = "traffic.sidecar.istio.io/includeInboundPorts"
	ExcludeOutboundCIDRs = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	IncludeOutboundCIDRs = "traffic.sidecar.istio.io/includeOutboundIPRanges"
)

// Sidecar is one proxy's whole configuration document.
type Sidecar struct {
	// Version changes whenever anything in the document does.
	Version  string   `json:"version"`
	Workload Workload `json:"workload"`
	// Proxy is what the proxy serves: capture listeners (outbound on
	// OutboundPort, inbound on InboundPort), route tables, clusters and
	// the workload's Identity.
	Proxy proxy.Config `json:"proxy"`
	// Authz is the workload's AuthorizationPolicy and
	// RequestAuthentication, applied to inbound HTTP requests.
	Authz authz.Config `json:"authz,omitzero"`
}

// Workload describes the pod the sidecar serves: telemetry labels and
// the local side of every decision.
type Workload struct {
	Pod            string `json:"pod"`
	Namespace      string `json:"namespace"`
	PodIP          string `json:"podIP,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Name is the workload (Deployment, else ReplicaSet, Job, ..., else
	// the pod), Istio's source_workload / destination_workload.
	Name string `json:"name"`
	// CanonicalService and CanonicalRevision are Istio's
	// (service.istio.io/canonical-name, else app.kubernetes.io/name, else
	// app, else Name; revision from version labels, else "latest").
	CanonicalService  string `json:"canonicalService"`
	CanonicalRevision string `json:"canonicalRevision"`
	App               string `json:"app,omitempty"`
	Version           string `json:"version,omitempty"`
	// Principal is the workload's SPIFFE ID without "spiffe://"
	// (cluster.local/ns/NS/sa/SA).
	Principal   string `json:"principal"`
	TrustDomain string `json:"trustDomain"`
}

// Status is what a sidecar reports after each document.
type Status struct {
	Version string `json:"version"`
	// Error is why the document was rejected (empty: applied).
	Error string `json:"error,omitempty"`
}
