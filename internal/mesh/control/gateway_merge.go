package control

import (
	"fmt"
	"net"
	"slices"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// MergeGateway returns base (an edge proxy's own configuration, such as
// the ingress controller's) with a gateway fragment (Index.Gateway's)
// added; base and frag are not changed. Warnings say what was left out.
//
// A fragment listener on a port base already listens on (compared by
// port when either host is a wildcard, else by address) is folded into
// base's listener: that listener gets a route table of its own
// ("BASE+FRAG", base's virtual hosts first, then the fragment's whose
// domains base does not serve: base's rules, Ingress's, win a host they
// share), and for TLS the fragment's certificates join base's (base's
// default certificate stays). A fragment listener whose TLS differs
// from base's on the same port is left out. Other listeners, and every
// route table, cluster and certificate, are added as they are; a name
// that base already uses is left out. The fragment's identity replaces
// base's when set.
func MergeGateway(base, frag *proxy.Config) (*proxy.Config, []string) {
	out := &proxy.Config{Version: base.Version, Identity: base.Identity}
	out.Listeners = slices.Clone(base.Listeners)
	out.RouteTables = slices.Clone(base.RouteTables)
	out.Clusters = slices.Clone(base.Clusters)
	out.Certificates = slices.Clone(base.Certificates)
	if frag == nil {
		return out, nil
	}
	if frag.Identity != nil {
		out.Identity = frag.Identity
	}
	var warn []string
	warnf := func(format string, args ...any) { warn = append(warn, fmt.Sprintf(format, args...)) }

	tables := map[string]int{}
	for i, t := range out.RouteTables {
		tables[t.Name] = i
	}
	fragTables := map[string]*proxy.RouteTable{}
	for i := range frag.RouteTables {
		fragTables[frag.RouteTables[i].Name] = &frag.RouteTables[i]
	}
	usedTables := map[string]bool{}
	for _, fl := range frag.Listeners {
		bi := slices.IndexFunc(out.Listeners, func(l proxy.Listener) bool { return samePort(l.Address, fl.Address) })
		if bi < 0 {
			if slices.ContainsFunc(out.Listeners, func(l proxy.Listener) bool { return l.Name == fl.Name }) {
				warnf("listener %s: the name is taken; left out", fl.Name)
				continue
			}
			out.Listeners = append(out.Listeners, fl)
			usedTables[fl.RouteTable] = true
			continue
		}
		bl := &out.Listeners[bi]
		if bl.Capture != nil || fl.Capture != nil || (bl.TLS == nil) != (fl.TLS == nil) {
			warnf("listener %s: %s is already served by listener %s with another protocol; left out", fl.Name, fl.Address, bl.Name)
			continue
		}
		ft := fragTables[fl.RouteTable]
		bti, ok := tables[bl.RouteTable]
		if ft == nil || !ok {
			warnf("listener %s: route table missing; left out", fl.Name)
			continue
		}
		merged := out.RouteTables[bti]
		merged.Name = bl.RouteTable + "+" + ft.Name
		merged.VirtualHosts = slices.Clone(merged.VirtualHosts)
		served := map[string]bool{}
		for _, vh := range merged.VirtualHosts {
			for _, d := range vh.Domains {
				served[d] = true
			}
		}
		for _, vh := range ft.VirtualHosts {
			var domains []string
			for _, d := range vh.Domains {
				if served[d] {
					if vh.Name != "blackhole:"+portOf(fl.Address) {
						warnf("listener %s: host %s is already served by %s; the gateway's routes for it are left out", bl.Name, d, bl.RouteTable)
					}
					continue
				}
				domains = append(domains, d)
			}
			if len(domains) > 0 {
				vh.Domains = domains
				merged.VirtualHosts = append(merged.VirtualHosts, vh)
			}
		}
		if _, dup := tables[merged.Name]; dup {
			warnf("listener %s: route table %s already exists; left out", fl.Name, merged.Name)
			continue
		}
		tables[merged.Name] = len(out.RouteTables)
		out.RouteTables = append(out.RouteTables, merged)
		bl.RouteTable = merged.Name
		if fl.TLS != nil {
			t := *bl.TLS
			t.Certificates = slices.Clone(t.Certificates)
			if t.DefaultCertificate == "" && len(t.Certificates) > 0 {
				t.DefaultCertificate = t.Certificates[0]
			}
			for _, c := range fl.TLS.Certificates {
				if !slices.Contains(t.Certificates, c) {
					t.Certificates = append(t.Certificates, c)
				}
			}
			bl.TLS = &t
		}
	}
	for _, t := range frag.RouteTables {
		if !usedTables[t.Name] {
			continue
		}
		if _, dup := tables[t.Name]; dup {
			warnf("route table %s: the name is taken; left out", t.Name)
			continue
		}
		tables[t.Name] = len(out.RouteTables)
		out.RouteTables = append(out.RouteTables, t)
	}
	for _, c := range frag.Clusters {
		if slices.ContainsFunc(out.Clusters, func(b proxy.Cluster) bool { return b.Name == c.Name }) {
			warnf("cluster %s: the name is taken; left out", c.Name)
			continue
		}
		out.Clusters = append(out.Clusters, c)
	}
	for _, c := range frag.Certificates {
		if slices.ContainsFunc(out.Certificates, func(b proxy.Certificate) bool { return b.Name == c.Name }) {
			warnf("certificate %s: the name is taken; left out", c.Name)
			continue
		}
		out.Certificates = append(out.Certificates, c)
	}
	return out, warn
}

// samePort says whether two listen addresses would take the same socket:
// the same port, and the same host or a wildcard one.
func samePort(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp || ap == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || wild(ah) || wild(bh)
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
