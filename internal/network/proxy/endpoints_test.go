package proxy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

func ep(addr string, ready, serving, terminating, local bool, zones ...string) endpoint {
	return endpoint{addr: netip.MustParseAddrPort(addr), ready: ready, serving: serving, terminating: terminating,
		local: local, zones: zones}
}

func addrs(eps []endpoint) string {
	var s []string
	for _, e := range eps {
		s = append(s, e.addr.Addr().String())
	}
	return strings.Join(s, ",")
}

func TestCategorize(t *testing.T) {
	var (
		readyLocal   = ep("10.0.0.1:80", true, true, false, true)
		readyRemote  = ep("10.0.0.2:80", true, true, false, false)
		termLocal    = ep("10.0.0.3:80", false, true, true, true)
		termRemote   = ep("10.0.0.4:80", false, true, true, false)
		notReady     = ep("10.0.0.5:80", false, false, false, true)
		zoneA        = ep("10.0.0.6:80", true, true, false, false, "zone-a")
		zoneB        = ep("10.0.0.7:80", true, true, false, false, "zone-b")
		zoneALocal   = ep("10.0.0.8:80", true, true, false, true, "zone-a")
		termNotServe = ep("10.0.0.9:80", false, false, true, true)
	)
	tests := []struct {
		name                   string
		eps                    []endpoint
		usesCluster, usesLocal bool
		zone                   string
		cluster, local, reach  string
		any                    bool
	}{
		{"none", nil, true, false, "", "", "", "", false},
		{"ready only", []endpoint{readyLocal, readyRemote, termLocal, notReady}, true, false, "",
			"10.0.0.1,10.0.0.2", "", "10.0.0.1,10.0.0.2", true},
		{"terminating fallback", []endpoint{termLocal, termRemote, notReady, termNotServe}, true, false, "",
			"10.0.0.3,10.0.0.4", "", "10.0.0.3,10.0.0.4", true},
		{"not ready only", []endpoint{notReady, termNotServe}, true, true, "", "", "", "", false},
		{"local policy", []endpoint{readyLocal, readyRemote}, false, true, "", "", "10.0.0.1", "10.0.0.1", true},
		{"local policy, none here", []endpoint{readyRemote}, false, true, "", "", "", "", true},
		{"local falls back to local terminating", []endpoint{termLocal, readyRemote}, true, true, "",
			"10.0.0.2", "10.0.0.3", "10.0.0.2,10.0.0.3", true},
		{"both policies", []endpoint{readyLocal, readyRemote}, true, true, "",
			"10.0.0.1,10.0.0.2", "10.0.0.1", "10.0.0.1,10.0.0.2", true},
		{"zone hints", []endpoint{zoneA, zoneB, zoneALocal}, true, false, "zone-a",
			"10.0.0.6,10.0.0.8", "", "10.0.0.6,10.0.0.8", true},
		{"zone hints, not for this zone", []endpoint{zoneA, zoneB}, true, false, "zone-c",
			"10.0.0.6,10.0.0.7", "", "10.0.0.6,10.0.0.7", true},
		{"zone hints, some missing", []endpoint{zoneA, readyRemote}, true, false, "zone-a",
			"10.0.0.2,10.0.0.6", "", "10.0.0.2,10.0.0.6", true},
		{"zone hints and local", []endpoint{zoneB, zoneALocal, ep("10.0.0.10:80", true, true, false, true, "zone-b")}, true, true, "zone-a",
			"10.0.0.8", "10.0.0.8,10.0.0.10", "10.0.0.8,10.0.0.10", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := slices.Clone(tt.eps)
			slices.SortFunc(eps, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
			c := categorize(eps, tt.usesCluster, tt.usesLocal, "node1", tt.zone)
			if got := addrs(c.cluster); got != tt.cluster {
				t.Errorf("cluster %q, want %q", got, tt.cluster)
			}
			if got := addrs(c.local); got != tt.local {
				t.Errorf("local %q, want %q", got, tt.local)
			}
			if got := addrs(c.reachable); got != tt.reach {
				t.Errorf("reachable %q, want %q", got, tt.reach)
			}
			if c.any != tt.any {
				t.Errorf("any %v, want %v", c.any, tt.any)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	node := &corev1.Node{}
	node.Name = "node1"
	node.Labels = map[string]string{corev1.LabelTopologyZone: "zone-a"}
	node.Spec.PodCIDR = "10.244.3.0/24"
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "node1"},
		{Type: corev1.NodeExternalIP, Address: "198.51.100.3"},
		{Type: corev1.NodeInternalIP, Address: "192.0.2.3"},
		{Type: corev1.NodeInternalIP, Address: "fd00::3"},
	}
	tests := []struct {
		name    string
		opts    Options
		node    *corev1.Node
		invalid bool
		want    string // the config, rendered by describe
	}{
		{"defaults", Options{}, nil, false, "table=skiff-proxy pods=none services=10.96.0.0/12 nodeports=all zone="},
		{"from the node", Options{NodeName: "node1"}, node, false, "table=skiff-proxy pods=10.244.3.0/24 services=10.96.0.0/12 nodeports=all zone=zone-a"},
		{"options win", Options{NodeName: "node1", PodCIDR: "10.244.0.0/16", ServiceCIDR: "none", Table: "t"}, node, false,
			"table=t pods=10.244.0.0/16 services=none nodeports=all zone=zone-a"},
		{"nodeport CIDRs", Options{NodePortAddresses: []string{"192.0.2.0/24", "127.0.0.0/8", "fd00::/64"}}, nil, false,
			"table=skiff-proxy pods=none services=10.96.0.0/12 nodeports=[192.0.2.0/24] zone="},
		{"nodeport loopback only", Options{NodePortAddresses: []string{"127.0.0.1/32"}}, nil, false,
			"table=skiff-proxy pods=none services=10.96.0.0/12 nodeports=[] zone="},
		{"nodeport primary from the node", Options{NodeName: "node1", NodePortAddresses: []string{"primary"}}, node, false,
			"table=skiff-proxy pods=10.244.3.0/24 services=10.96.0.0/12 nodeports=[192.0.2.3/32] zone=zone-a"},
		{"nodeport primary from options", Options{NodeIPs: []string{"203.0.113.1"}, NodePortAddresses: []string{"primary"}}, node, false,
			"table=skiff-proxy pods=10.244.3.0/24 services=10.96.0.0/12 nodeports=[203.0.113.1/32] zone=zone-a"},
		{"bad pod CIDR", Options{PodCIDR: "10.244.0.0"}, nil, true, ""},
		{"IPv6 pod CIDR", Options{PodCIDR: "fd00::/64"}, nil, true, ""},
		{"bad service CIDR", Options{ServiceCIDR: "ten"}, nil, true, ""},
		{"bad node IP", Options{NodeIPs: []string{"x"}}, nil, true, ""},
		{"bad nodeport address", Options{NodePortAddresses: []string{"eth0"}}, nil, true, ""},
		{"bad table", Options{Table: "a/b"}, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.setDefaults()
			err := o.validate()
			if tt.invalid {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("validate: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(o.configFor(tt.node)); got != tt.want {
				t.Fatalf("config %q, want %q", got, tt.want)
			}
		})
	}
}

func describe(c *config) string {
	np := "all"
	if c.nodePortCIDRs != nil {
		var s []string
		for _, p := range c.nodePortCIDRs {
			s = append(s, p.String())
		}
		np = "[" + strings.Join(s, " ") + "]"
	}
	prefix := func(p netip.Prefix) string {
		if !p.IsValid() {
			return "none"
		}
		return p.String()
	}
	return "table=" + c.table + " pods=" + prefix(c.podCIDR) + " services=" + prefix(c.serviceCIDR) +
		" nodeports=" + np + " zone=" + c.zone
}
