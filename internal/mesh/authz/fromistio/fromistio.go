// Package fromistio translates Istio's security objects
// (AuthorizationPolicy, RequestAuthentication, PeerAuthentication) into
// what one workload's sidecar enforces. The node's mesh server
// (internal/mesh/control) calls it; the sidecar never imports it.
//
// PLACEHOLDER: signatures only; the translation is still to be written.
package fromistio

import (
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// ForWorkload computes the authz.Config of the workload with podLabels
// in namespace ns from every AuthorizationPolicy and
// RequestAuthentication in the cluster (the function selects those that
// apply: the root namespace's, the namespace's, and those whose selector
// matches). Policies it cannot use are reported in errs and left out
// (a DENY it cannot use denies everything it could have matched, as
// Istio does).
func ForWorkload(ns string, podLabels map[string]string, rootNamespace string,
	aps []*securityv1.AuthorizationPolicy, ras []*securityv1.RequestAuthentication) (cfg authz.Config, errs []error) {
	return authz.Config{}, nil
}

// PeerModes is a workload's inbound mTLS mode, per port.
type PeerModes struct {
	Default proxy.MTLSMode            `json:"default"`
	Ports   map[uint32]proxy.MTLSMode `json:"ports,omitempty"`
}

// For is the mode on port.
func (m PeerModes) For(port uint32) proxy.MTLSMode {
	if mode, ok := m.Ports[port]; ok {
		return mode
	}
	return m.Default
}

// PeerAuthentication resolves the PeerAuthentications that apply to the
// workload (workload over namespace over root namespace, port-level
// over workload-level; none means PERMISSIVE).
func PeerAuthentication(ns string, podLabels map[string]string, rootNamespace string,
	pas []*securityv1.PeerAuthentication) PeerModes {
	return PeerModes{Default: proxy.MTLSPermissive}
}
