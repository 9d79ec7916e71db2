// Package authz evaluates Istio's AuthorizationPolicy and
// RequestAuthentication for a sidecar's inbound requests.
//
// PLACEHOLDER: the types below are the contract only; the engine, JWT
// validation and the translation from Istio's objects are still to be
// written.
package authz

// Config is one workload's authorization and request authentication,
// as the node computes it from Istio's objects and ships it in the
// sidecar's document (JSON).
type Config struct{}
