package agent

import (
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/network/resolvconf"
)

// The API's limits on a pod's resolver configuration (the kubelet cuts
// longer lists and says so in an event).
const (
	maxNameservers      = 3
	maxSearchDomains    = 32
	maxSearchLineLength = 2048
	maxSearchDomainLen  = 253
)

// resolvSettings are a resolv.conf's contents.
type resolvSettings struct {
	servers, searches, options []string
}

// dnsWarning is an event about the pod's DNS settings.
type dnsWarning struct{ reason, message string }

// hostResolv reads the node's resolver configuration: opts.ResolvConf, or
// by default /etc/resolv.conf — unless that names only loopback servers (a
// local stub such as systemd-resolved's, unreachable from a pod's network
// namespace) and systemd-resolved's own file exists, as kubelets on such
// hosts are configured to. A missing file gives empty settings.
func (a *Agent) hostResolv() resolvSettings {
	if a.opts.ResolvConf != "" {
		data, _ := os.ReadFile(a.opts.ResolvConf)
		return settingsOf(resolvconf.Parse(data))
	}
	c, _ := resolvconf.ReadNode(resolvconf.Default, resolvconf.Systemd)
	return settingsOf(c)
}

func settingsOf(c resolvconf.Config) resolvSettings {
	return resolvSettings{servers: c.Nameservers, searches: c.Searches, options: c.Options}
}

// podDNS is the pod's resolver configuration per its dnsPolicy and
// dnsConfig, as the kubelet computes it (pkg/kubelet/network/dns):
//
//   - ClusterFirst (the default; on the host network only with
//     ClusterFirstWithHostNet): the cluster's nameservers, search
//     <ns>.svc.<domain> svc.<domain> <domain> then the node's domains,
//     options ndots:5; without cluster nameservers, as Default (with a
//     warning);
//   - Default, and ClusterFirst on the host network: the node's settings;
//   - None: nothing but dnsConfig.
//
// dnsConfig's nameservers and searches are then appended (no repeats) and
// its options merged by name (the pod's win); the result is cut to the
// API's limits.
func podDNS(pod *corev1.Pod, clusterDNS []string, domain string, host resolvSettings) (resolvSettings, []dnsWarning) {
	var warns []dnsWarning
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	var r resolvSettings
	switch policy {
	case corev1.DNSNone:
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		if len(clusterDNS) > 0 {
			r.servers = slices.Clone(clusterDNS)
			if domain != "" {
				r.searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
			}
			r.searches = omitDuplicates(append(r.searches, host.searches...))
			r.options = []string{"ndots:5"}
			break
		}
		warns = append(warns, dnsWarning{"MissingClusterDNS", fmt.Sprintf(
			"pod: %q. the node has no cluster DNS address configured and cannot create a pod using %q policy; falling back to %q policy",
			pod.Namespace+"/"+pod.Name, corev1.DNSClusterFirst, corev1.DNSDefault)})
		r = host
	default: // Default
		r = host
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		r.servers = omitDuplicates(append(slices.Clone(r.servers), dc.Nameservers...))
		r.searches = omitDuplicates(append(slices.Clone(r.searches), dc.Searches...))
		r.options = mergeOptions(r.options, dc.Options)
	}
	if len(r.servers) > maxNameservers {
		r.servers = r.servers[:maxNameservers]
		warns = append(warns, dnsWarning{"DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(r.servers, " ")})
	}
	if s, cut := fitSearches(r.searches); cut {
		r.searches = s
		warns = append(warns, dnsWarning{"DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(s, " ")})
	}
	return r, warns
}

// fitSearches drops search domains too long for resolvers, then cuts the
// list to the API's count and line length.
func fitSearches(s []string) ([]string, bool) {
	cut := false
	out := make([]string, 0, len(s))
	for _, d := range s {
		if len(d) > maxSearchDomainLen {
			cut = true
			continue
		}
		out = append(out, d)
	}
	if len(out) > maxSearchDomains {
		out, cut = out[:maxSearchDomains], true
	}
	for len(out) > 0 && len(strings.Join(out, " ")) > maxSearchLineLength {
		out, cut = out[:len(out)-1], true
	}
	return out, cut
}

func omitDuplicates(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// mergeOptions adds the pod's options to the base ones; an option the
// pod names replaces the base's of the same name, in place.
func mergeOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	out := slices.Clone(base)
	for _, o := range pod {
		opt := o.Name
		if o.Value != nil && *o.Value != "" {
			opt += ":" + *o.Value
		}
		i := slices.IndexFunc(out, func(s string) bool { n, _, _ := strings.Cut(s, ":"); return n == o.Name })
		if i >= 0 {
			out[i] = opt
		} else {
			out = append(out, opt)
		}
	}
	return out
}
