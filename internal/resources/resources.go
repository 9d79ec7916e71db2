// Package resources is the declarative table of the API resources Skiff
// serves. Adding a built-in resource is one entry in All; the API server,
// discovery, OpenAPI and the controllers all read this table.
//
// It holds data only and may be imported by any package.
package resources

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Verbs every ordinary resource supports.
var crudVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// Resource describes one served resource in one group version.
type Resource struct {
	// Group, Version and Kind of the served form, e.g. apps/v1 Deployment.
	Group, Version, Kind string
	// Plural is the path segment ("deployments"); Singular the lower-case kind.
	Plural, Singular string
	ShortNames       []string
	Categories       []string
	Namespaced       bool
	// Status and Scale say whether the status and scale subresources exist.
	Status bool
	Scale  bool
	// Generation says whether metadata.generation counts spec changes.
	Generation bool
	// StorageVersion is the version objects are kept in when the group
	// serves several versions of the kind (autoscaling HPA); empty means
	// Version.
	StorageVersion string
	// Verbs overrides crudVerbs when set.
	Verbs []string
	// NoOpenAPI says the kind's Go type has no OpenAPI definition (Istio's
	// kinds): the OpenAPI documents leave it out and kubectl validates it
	// on the server only, as a CRD without a schema.
	NoOpenAPI bool
}

// GroupVersion of the served form.
func (r Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GVK of the served form.
func (r Resource) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// GVR of the served form.
func (r Resource) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Plural}
}

// StorageGVK is the group, version and kind objects are stored as.
func (r Resource) StorageGVK() schema.GroupVersionKind {
	v := r.StorageVersion
	if v == "" {
		v = r.Version
	}
	return schema.GroupVersionKind{Group: r.Group, Version: v, Kind: r.Kind}
}

// AllVerbs returns the verbs the resource supports.
func (r Resource) AllVerbs() []string {
	if r.Verbs != nil {
		return r.Verbs
	}
	return crudVerbs
}

var (
	all             = []string{"all"}
	istioNetworking = []string{"istio-io", "networking-istio-io"}
	istioSecurity   = []string{"istio-io", "security-istio-io"}
)

// All lists every served resource. Order is the order discovery shows.
var All = []Resource{
	// core/v1
	{Version: "v1", Kind: "Namespace", Plural: "namespaces", ShortNames: []string{"ns"}, Status: true,
		Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}},
	{Version: "v1", Kind: "Pod", Plural: "pods", Generation: true, ShortNames: []string{"po"}, Categories: all, Namespaced: true, Status: true},
	{Version: "v1", Kind: "Service", Plural: "services", ShortNames: []string{"svc"}, Categories: all, Namespaced: true, Status: true},
	{Version: "v1", Kind: "Endpoints", Plural: "endpoints", ShortNames: []string{"ep"}, Namespaced: true},
	{Version: "v1", Kind: "ConfigMap", Plural: "configmaps", ShortNames: []string{"cm"}, Namespaced: true},
	{Version: "v1", Kind: "Secret", Plural: "secrets", Namespaced: true},
	{Version: "v1", Kind: "ServiceAccount", Plural: "serviceaccounts", ShortNames: []string{"sa"}, Namespaced: true},
	{Version: "v1", Kind: "Node", Plural: "nodes", ShortNames: []string{"no"}, Status: true},
	{Version: "v1", Kind: "Event", Plural: "events", ShortNames: []string{"ev"}, Namespaced: true},
	{Version: "v1", Kind: "PersistentVolumeClaim", Plural: "persistentvolumeclaims", ShortNames: []string{"pvc"}, Namespaced: true, Status: true},
	{Version: "v1", Kind: "PersistentVolume", Plural: "persistentvolumes", ShortNames: []string{"pv"}, Status: true},
	{Version: "v1", Kind: "LimitRange", Plural: "limitranges", ShortNames: []string{"limits"}, Namespaced: true},
	{Version: "v1", Kind: "ResourceQuota", Plural: "resourcequotas", ShortNames: []string{"quota"}, Namespaced: true, Status: true},
	// apps/v1
	{Group: "apps", Version: "v1", Kind: "Deployment", Plural: "deployments", Generation: true, ShortNames: []string{"deploy"}, Categories: all, Namespaced: true, Status: true, Scale: true},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet", Plural: "replicasets", Generation: true, ShortNames: []string{"rs"}, Categories: all, Namespaced: true, Status: true, Scale: true},
	{Group: "apps", Version: "v1", Kind: "StatefulSet", Plural: "statefulsets", Generation: true, ShortNames: []string{"sts"}, Categories: all, Namespaced: true, Status: true, Scale: true},
	{Group: "apps", Version: "v1", Kind: "DaemonSet", Plural: "daemonsets", Generation: true, ShortNames: []string{"ds"}, Categories: all, Namespaced: true, Status: true},
	// discovery.k8s.io/v1
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice", Plural: "endpointslices", Namespaced: true},
	// batch/v1
	{Group: "batch", Version: "v1", Kind: "Job", Plural: "jobs", Generation: true, Categories: all, Namespaced: true, Status: true},
	{Group: "batch", Version: "v1", Kind: "CronJob", Plural: "cronjobs", Generation: true, ShortNames: []string{"cj"}, Categories: all, Namespaced: true, Status: true},
	// autoscaling: v2 is stored, v1 is served by conversion.
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler", Plural: "horizontalpodautoscalers", ShortNames: []string{"hpa"}, Categories: all, Namespaced: true, Status: true},
	{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler", Plural: "horizontalpodautoscalers", ShortNames: []string{"hpa"}, Categories: all, Namespaced: true, Status: true, StorageVersion: "v2"},
	// networking.k8s.io/v1
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Plural: "ingresses", Generation: true, ShortNames: []string{"ing"}, Namespaced: true, Status: true},
	{Group: "networking.k8s.io", Version: "v1", Kind: "IngressClass", Plural: "ingressclasses", Generation: true},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy", Plural: "networkpolicies", Generation: true, ShortNames: []string{"netpol"}, Namespaced: true},
	// Services' cluster IPs are recorded as IPAddresses by the API server.
	{Group: "networking.k8s.io", Version: "v1", Kind: "IPAddress", Plural: "ipaddresses", ShortNames: []string{"ip"}},
	// coordination.k8s.io/v1
	{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease", Plural: "leases", Namespaced: true},
	// policy/v1
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget", Plural: "poddisruptionbudgets", Generation: true, ShortNames: []string{"pdb"}, Namespaced: true, Status: true},
	// certificates.k8s.io/v1 (the approval subresource is the API
	// server's own, as upstream)
	{Group: "certificates.k8s.io", Version: "v1", Kind: "CertificateSigningRequest", Plural: "certificatesigningrequests", ShortNames: []string{"csr"}, Status: true},
	// settings.k8s.io/v1alpha1 (removed upstream in 1.20; Skiff's own Go
	// type, registered by the daemon, stored as JSON)
	{Group: "settings.k8s.io", Version: "v1alpha1", Kind: "PodPreset", Plural: "podpresets", Namespaced: true},
	// networking.istio.io and security.istio.io: Istio's kinds (types from
	// istio.io/client-go, registered by the daemon, stored as JSON in v1;
	// the other versions share the schema and are served by conversion).
	{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService", Plural: "virtualservices", Generation: true, ShortNames: []string{"vs"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule", Plural: "destinationrules", Generation: true, ShortNames: []string{"dr"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "networking.istio.io", Version: "v1", Kind: "Gateway", Plural: "gateways", Generation: true, ShortNames: []string{"gw"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "networking.istio.io", Version: "v1", Kind: "ServiceEntry", Plural: "serviceentries", Generation: true, ShortNames: []string{"se"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "networking.istio.io", Version: "v1", Kind: "Sidecar", Plural: "sidecars", Generation: true, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "networking.istio.io", Version: "v1beta1", Kind: "VirtualService", Plural: "virtualservices", Generation: true, ShortNames: []string{"vs"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1beta1", Kind: "DestinationRule", Plural: "destinationrules", Generation: true, ShortNames: []string{"dr"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1beta1", Kind: "Gateway", Plural: "gateways", Generation: true, ShortNames: []string{"gw"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1beta1", Kind: "ServiceEntry", Plural: "serviceentries", Generation: true, ShortNames: []string{"se"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1beta1", Kind: "Sidecar", Plural: "sidecars", Generation: true, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "VirtualService", Plural: "virtualservices", Generation: true, ShortNames: []string{"vs"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "DestinationRule", Plural: "destinationrules", Generation: true, ShortNames: []string{"dr"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "Gateway", Plural: "gateways", Generation: true, ShortNames: []string{"gw"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "ServiceEntry", Plural: "serviceentries", Generation: true, ShortNames: []string{"se"}, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "Sidecar", Plural: "sidecars", Generation: true, Categories: istioNetworking, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication", Plural: "peerauthentications", Generation: true, ShortNames: []string{"pa"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy", Plural: "authorizationpolicies", Generation: true, ShortNames: []string{"ap"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication", Plural: "requestauthentications", Generation: true, ShortNames: []string{"ra"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true},
	{Group: "security.istio.io", Version: "v1beta1", Kind: "PeerAuthentication", Plural: "peerauthentications", Generation: true, ShortNames: []string{"pa"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "security.istio.io", Version: "v1beta1", Kind: "AuthorizationPolicy", Plural: "authorizationpolicies", Generation: true, ShortNames: []string{"ap"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
	{Group: "security.istio.io", Version: "v1beta1", Kind: "RequestAuthentication", Plural: "requestauthentications", Generation: true, ShortNames: []string{"ra"}, Categories: istioSecurity, Namespaced: true, Status: true, NoOpenAPI: true, StorageVersion: "v1"},
}

func init() {
	for i := range All {
		if All[i].Singular == "" {
			All[i].Singular = lower(All[i].Kind)
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
