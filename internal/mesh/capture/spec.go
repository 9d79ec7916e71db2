// Package capture redirects a meshed pod's TCP traffic to its sidecar,
// as Istio's istio-iptables does, with one nftables table (`skiff-mesh`,
// family ip) in the pod's network namespace:
//
//   - outbound: TCP the pod's processes open, except the proxy's own (uid
//     or gid 1337), to 127.0.0.1, or to excluded ports and ranges, goes
//     to the outbound listener (15001);
//   - inbound: TCP arriving for the pod, except the sidecar's own ports
//     (15000, 15020, 15021, 15090) and excluded ports, goes to the inbound
//     listener (15006);
//   - the proxy's traffic back into its own pod: a connection from uid
//     1337 leaving through lo to an address other than 127.0.0.1 (the pod
//     calling itself through its service) is captured as inbound, and the
//     proxy's inbound passthrough, which connects from 127.0.0.6, passes.
//
// The chains keep Istio's names (ISTIO_INBOUND, ISTIO_IN_REDIRECT,
// ISTIO_OUTPUT, ISTIO_REDIRECT) so that what `nft list table ip
// skiff-mesh` shows reads like istio-iptables' rules. Ruleset.String
// renders the table in that form.
//
// The node agent installs the table (through Node) once the pod's sandbox
// exists and before any of its containers starts; the pod's containers
// need no NET_ADMIN. Only the daemon and the agent's tests import it.
package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Spec says what to capture.
type Spec struct {
	// AllInbound captures every inbound port but the excluded ones;
	// otherwise only InboundPorts are (none: no inbound capture).
	AllInbound          bool
	InboundPorts        []uint16
	ExcludeInboundPorts []uint16
	// AllOutbound captures outbound TCP to every address but the excluded
	// ranges; otherwise only to OutboundCIDRs.
	AllOutbound          bool
	OutboundCIDRs        []netip.Prefix
	ExcludeOutboundCIDRs []netip.Prefix
	ExcludeOutboundPorts []uint16
}

// sidecarPorts are never captured inbound: the proxy's admin, stats,
// health and Prometheus ports, reached directly.
var sidecarPorts = []uint16{meshconfig.AdminPort, meshconfig.StatsPort, meshconfig.HealthPort, 15090}

// SpecFor reads a pod's capture from its annotations, with Istio's
// defaults: every inbound port ("*") but the sidecar's own, every
// outbound address ("*"). A malformed annotation wraps errdefs.ErrInvalid.
func SpecFor(pod *corev1.Pod) (Spec, error) {
	a := pod.Annotations
	var s Spec
	var err error
	get := func(key, def string) string {
		if v, ok := a[key]; ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	fail := func(key string, err error) (Spec, error) {
		return Spec{}, fmt.Errorf("annotation %s: %v: %w", key, err, errdefs.ErrInvalid)
	}
	if v := get(meshconfig.IncludeInboundPorts, "*"); v == "*" {
		s.AllInbound = true
	} else if s.InboundPorts, err = parsePorts(v); err != nil {
		return fail(meshconfig.IncludeInboundPorts, err)
	}
	excl, err := parsePorts(get(meshconfig.ExcludeInboundPorts, ""))
	if err != nil {
		return fail(meshconfig.ExcludeInboundPorts, err)
	}
	s.ExcludeInboundPorts = dedupe(append(slices.Clone(sidecarPorts), excl...))
	if v := get(meshconfig.IncludeOutboundCIDRs, "*"); v == "*" {
		s.AllOutbound = true
	} else if s.OutboundCIDRs, err = parseCIDRs(v); err != nil {
		return fail(meshconfig.IncludeOutboundCIDRs, err)
	}
	if s.ExcludeOutboundCIDRs, err = parseCIDRs(get(meshconfig.ExcludeOutboundCIDRs, "")); err != nil {
		return fail(meshconfig.ExcludeOutboundCIDRs, err)
	}
	if s.ExcludeOutboundPorts, err = parsePorts(get(meshconfig.ExcludeOutboundPorts, "")); err != nil {
		return fail(meshconfig.ExcludeOutboundPorts, err)
	}
	return s, nil
}

// splitList splits Istio's comma-separated lists (spaces allowed).
func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parsePorts(v string) ([]uint16, error) {
	var out []uint16
	for _, f := range splitList(v) {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("bad port %q", f)
		}
		out = append(out, uint16(n))
	}
	return dedupe(out), nil
}

// parseCIDRs reads IPv4 ranges; a plain address is its /32. IPv6 ranges
// are skipped: the table is IPv4 (pods have IPv4 addresses only).
func parseCIDRs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(v) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("bad address range %q", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		switch {
		case p.Addr().Is4():
			out = append(out, p.Masked())
		case p.Addr().Is4In6() && p.Bits() >= 96:
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked())
		}
	}
	return out, nil
}

func dedupe(ports []uint16) []uint16 {
	slices.Sort(ports)
	return slices.Compact(ports)
}
