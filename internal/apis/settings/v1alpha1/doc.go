// Package v1alpha1 is the settings.k8s.io/v1alpha1 API group Skiff serves:
// PodPreset, which upstream removed in Kubernetes 1.20 and Skiff keeps for
// the workshop's way of injecting common env and volumes into pods.
//
// It holds the Go types (with hand-written deep copies), their
// registration into a runtime.Scheme, and a small JSON client and informer
// for components that read PodPresets through the API. Any package may
// import it; the daemon registers it into the scheme the API server uses.
package v1alpha1
