package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

// Defaults of Options.
const (
	DefaultTable          = "skiff-proxy"
	DefaultServiceCIDR    = "10.96.0.0/12"
	DefaultFullSyncPeriod = time.Hour
	// NodePortAddressesPrimary as the only NodePortAddresses entry means
	// the node's own IPs (NodeIPs).
	NodePortAddressesPrimary = "primary"
)

// Options configure a Proxy. All are optional.
type Options struct {
	// NodeName is this node: endpoints whose nodeName it is are local for
	// the traffic policies Local, and the Node of that name fills in
	// NodeIPs, PodCIDR and the topology zone.
	NodeName string
	// NodeIPs are the node's own addresses, for NodePortAddresses
	// "primary". Default: the Node's InternalIP (else ExternalIP)
	// addresses.
	NodeIPs []string
	// PodCIDR is the cluster's pod network: traffic from outside it to a
	// ClusterIP is masqueraded, and pods reaching an external address of
	// a Service with externalTrafficPolicy Local are not held to that
	// policy. Default: the Node's spec.podCIDR; without one neither
	// happens.
	PodCIDR string
	// ServiceCIDR is where ClusterIPs come from: traffic to an address in
	// it that no Service has is dropped. Default DefaultServiceCIDR;
	// "none" turns that off.
	ServiceCIDR string
	// NodePortAddresses are CIDRs: NodePorts answer on the node's local
	// addresses within them, or on NodeIPs for the single entry "primary".
	// Default: on every local address except loopback.
	NodePortAddresses []string
	// Table is the nftables table (family ip) the Proxy owns. Default
	// DefaultTable.
	Table string
	// NetNS is the path of the network namespace to program. Default: the
	// namespace of the thread that calls Run (or Cleanup).
	NetNS string
	// FullSyncPeriod is how often the whole table is rewritten from the
	// caches anyway, repairing whatever changed it behind the Proxy's
	// back. Default DefaultFullSyncPeriod.
	FullSyncPeriod time.Duration
}

func (o *Options) setDefaults() {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if o.FullSyncPeriod <= 0 {
		o.FullSyncPeriod = DefaultFullSyncPeriod
	}
}

// validate checks what Options alone fix.
func (o *Options) validate() error {
	if len(o.Table) == 0 || len(o.Table) > maxNameLen || strings.ContainsAny(o.Table, "/ \t\n\x00") {
		return fmt.Errorf("proxy: table name %q: %w", o.Table, errdefs.ErrInvalid)
	}
	if _, err := parseCIDR(o.PodCIDR, "pod CIDR"); err != nil {
		return err
	}
	if o.ServiceCIDR != "none" {
		if _, err := parseCIDR(o.ServiceCIDR, "service CIDR"); err != nil {
			return err
		}
	}
	if _, err := parseNodeIPs(o.NodeIPs); err != nil {
		return err
	}
	if _, _, err := parseNodePortAddresses(o.NodePortAddresses); err != nil {
		return err
	}
	return nil
}

// configFor combines the options with what the Node says (node may be
// nil); validate has passed.
func (o *Options) configFor(node *corev1.Node) *config {
	cfg := &config{table: o.Table, nodeName: o.NodeName}
	if node != nil {
		cfg.zone = node.Labels[corev1.LabelTopologyZone]
	}
	cfg.podCIDR, _ = parseCIDR(o.PodCIDR, "")
	if !cfg.podCIDR.IsValid() && node != nil {
		cfg.podCIDR, _ = parseCIDR(node.Spec.PodCIDR, "")
		if !cfg.podCIDR.Addr().Is4() {
			cfg.podCIDR = netip.Prefix{}
		}
	}
	if o.ServiceCIDR != "none" {
		cfg.serviceCIDR, _ = parseCIDR(o.ServiceCIDR, "")
	}
	cidrs, primary, _ := parseNodePortAddresses(o.NodePortAddresses)
	if primary {
		ips, _ := parseNodeIPs(o.NodeIPs)
		if len(ips) == 0 {
			ips = nodeAddresses(node)
		}
		cidrs = []netip.Prefix{}
		for _, a := range ips {
			cidrs = append(cidrs, netip.PrefixFrom(a, 32))
		}
	}
	cfg.nodePortCIDRs = cidrs
	return cfg
}

// parseCIDR parses an IPv4 CIDR ("" is no prefix); what names it in
// errors.
func parseCIDR(s, what string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("proxy: %s %q: want an IPv4 CIDR: %w", what, s, errdefs.ErrInvalid)
	}
	return p.Masked(), nil
}

func parseNodeIPs(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: node IP %q: %w", s, errdefs.ErrInvalid)
		}
		if a.Is4() {
			out = append(out, a)
		}
	}
	return out, nil
}

// parseNodePortAddresses returns the CIDRs (nil: every local address), or
// primary for "primary". Loopback is never a NodePort address.
func parseNodePortAddresses(ss []string) (cidrs []netip.Prefix, primary bool, err error) {
	if len(ss) == 1 && ss[0] == NodePortAddressesPrimary {
		return nil, true, nil
	}
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, false, fmt.Errorf("proxy: NodePort address %q: want a CIDR or %q: %w", s, NodePortAddressesPrimary, errdefs.ErrInvalid)
		}
		if p.Addr().Is4() && !loopback.Contains(p.Addr()) {
			cidrs = append(cidrs, p.Masked())
		}
	}
	if len(ss) > 0 && cidrs == nil {
		cidrs = []netip.Prefix{} // only IPv6 or loopback: no NodePort address
	}
	return cidrs, false, nil
}

// nodeAddresses are a Node's InternalIP addresses, else its ExternalIP ones.
func nodeAddresses(node *corev1.Node) []netip.Addr {
	if node == nil {
		return nil
	}
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		var out []netip.Addr
		for _, a := range node.Status.Addresses {
			if a.Type != typ {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				out = append(out, ip)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}
