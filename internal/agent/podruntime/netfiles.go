package podruntime

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

// hostsFile is the kubelet's managed /etc/hosts for a pod with its own
// network: localhost lines, the pod's IP with its hostname (and FQDN when
// it has a domain), then the pod's host aliases.
func hostsFile(ip, hostname, domain string, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if ip != "" {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	b.Write(hostAliasLines(aliases))
	return b.Bytes()
}

// nodeHostsFile is the kubelet's /etc/hosts for a hostNetwork pod: the
// node's own, then the pod's host aliases.
func nodeHostsFile(node []byte, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (host network).\n")
	b.Write(node)
	if len(node) > 0 && node[len(node)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.Write(hostAliasLines(aliases))
	return b.Bytes()
}

func hostAliasLines(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}

// checkHostAliases refuses aliases that would corrupt /etc/hosts.
func checkHostAliases(aliases []corev1.HostAlias) error {
	for _, a := range aliases {
		if _, err := netip.ParseAddr(a.IP); err != nil {
			return fmt.Errorf("host alias IP %q: %w", a.IP, errdefs.ErrInvalid)
		}
		for _, h := range a.Hostnames {
			if h == "" || strings.ContainsAny(h, " \t\r\n#") {
				return fmt.Errorf("host alias hostname %q: %w", h, errdefs.ErrInvalid)
			}
		}
	}
	return nil
}

// resolvConf writes the pod's resolv.conf: the given servers, searches
// and options; with no servers, the node's resolv.conf, with searches and
// options replaced when given.
func resolvConf(node []byte, servers, searches, options []string) ([]byte, error) {
	for _, list := range [][]string{servers, searches, options} {
		for _, s := range list {
			if s == "" || strings.ContainsAny(s, " \t\r\n#;") {
				return nil, fmt.Errorf("resolv.conf entry %q: %w", s, errdefs.ErrInvalid)
			}
		}
	}
	if len(servers) == 0 {
		if len(searches) == 0 && len(options) == 0 {
			return node, nil
		}
		servers, searches, options = mergeNodeResolv(node, searches, options)
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), nil
}

// mergeNodeResolv takes the node's servers and, unless given, its
// searches and options.
func mergeNodeResolv(node []byte, searches, options []string) (s, se, o []string) {
	var nodeSearch, nodeOpts []string
	sc := bufio.NewScanner(bytes.NewReader(node))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			s = append(s, f[1])
		case "search", "domain":
			nodeSearch = f[1:]
		case "options":
			nodeOpts = append(nodeOpts, f[1:]...)
		}
	}
	if len(searches) == 0 {
		searches = nodeSearch
	}
	if len(options) == 0 {
		options = nodeOpts
	}
	return s, searches, options
}
