package dns

import (
	"fmt"
	"net/netip"
	"slices"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/resolvconf"
)

// Where the node's resolver configuration is, and where systemd-resolved
// keeps the real upstreams behind its 127.0.0.53 stub.
const (
	DefaultResolvConf = resolvconf.Default
	systemdResolvConf = resolvconf.Systemd
)

// hostUpstreams reads the nameservers of path. When they are all loopback
// addresses (a local stub resolver) and stub has nameservers, stub's are
// used instead, as kubelets on systemd-resolved hosts are configured to.
// Addresses in self are dropped, so that the server never asks itself.
func hostUpstreams(path, stub string, self []netip.AddrPort) ([]string, error) {
	c, err := resolvconf.ReadNode(path, stub)
	if err != nil {
		return nil, fmt.Errorf("resolver configuration: %w", err)
	}
	return upstreamAddrs(c.Nameservers, self)
}

// upstreamAddrs turns "ip" or "ip:port" entries into "ip:port" (port 53 by
// default), without the addresses in self and without repeats.
func upstreamAddrs(list []string, self []netip.AddrPort) ([]string, error) {
	var out []string
	for _, s := range list {
		ap, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		if slices.Contains(self, ap) {
			continue
		}
		if a := ap.String(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func parseUpstream(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("upstream resolver %q: not an address or address:port: %w", s, errdefs.ErrInvalid)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
