package fromistio

import (
	"cmp"
	"slices"

	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"skiff.dev/skiff/internal/mesh/proxy"
)

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
// workload with podLabels in ns, as Istio does: the workload's (a
// selector in ns that matches) over the namespace's (no selector in ns)
// over the mesh's (no selector in rootNamespace, "" for istio-system);
// UNSET inherits from the level above, none at all means PERMISSIVE;
// portLevelMtls (on the workload's only) overrides per port. When
// several apply at one level the oldest wins (then the name).
func PeerAuthentication(ns string, podLabels map[string]string, rootNamespace string,
	pas []*securityv1.PeerAuthentication) PeerModes {
	if rootNamespace == "" {
		rootNamespace = DefaultRootNamespace
	}
	var mesh, namespace, workload *securityv1.PeerAuthentication
	for _, pa := range pas {
		if pa == nil {
			continue
		}
		wide := pa.Spec.Selector == nil || len(pa.Spec.Selector.MatchLabels) == 0
		switch {
		case pa.Namespace == rootNamespace && wide:
			mesh = older(mesh, pa)
			if ns == rootNamespace {
				namespace = older(namespace, pa)
			}
		case pa.Namespace == ns && wide:
			namespace = older(namespace, pa)
		case pa.Namespace == ns && selects(pa.Spec.Selector, podLabels):
			workload = older(workload, pa)
		}
	}
	mode := proxy.MTLSPermissive
	mode = inherit(mode, mesh)
	mode = inherit(mode, namespace)
	mode = inherit(mode, workload)
	out := PeerModes{Default: mode}
	if workload != nil && len(workload.Spec.PortLevelMtls) > 0 {
		ports := make([]uint32, 0, len(workload.Spec.PortLevelMtls))
		for p := range workload.Spec.PortLevelMtls {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		for _, p := range ports {
			m := workload.Spec.PortLevelMtls[p]
			if m == nil || m.Mode == securityapi.PeerAuthentication_MutualTLS_UNSET {
				continue
			}
			if out.Ports == nil {
				out.Ports = map[uint32]proxy.MTLSMode{}
			}
			out.Ports[p] = modeOf(m.Mode, mode)
		}
	}
	return out
}

// older is the one of a and b created first (then by name); a may be nil.
func older(a, b *securityv1.PeerAuthentication) *securityv1.PeerAuthentication {
	if a == nil {
		return b
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		if c < 0 {
			return a
		}
		return b
	}
	if cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) <= 0 {
		return a
	}
	return b
}

func inherit(parent proxy.MTLSMode, pa *securityv1.PeerAuthentication) proxy.MTLSMode {
	if pa == nil || pa.Spec.Mtls == nil {
		return parent
	}
	return modeOf(pa.Spec.Mtls.Mode, parent)
}

func modeOf(m securityapi.PeerAuthentication_MutualTLS_Mode, parent proxy.MTLSMode) proxy.MTLSMode {
	switch m {
	case securityapi.PeerAuthentication_MutualTLS_DISABLE:
		return proxy.MTLSDisable
	case securityapi.PeerAuthentication_MutualTLS_PERMISSIVE:
		return proxy.MTLSPermissive
	case securityapi.PeerAuthentication_MutualTLS_STRICT:
		return proxy.MTLSStrict
	}
	return parent
}
