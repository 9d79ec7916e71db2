// Package resolvconf reads a node's resolver configuration (resolv.conf)
// as the kubelet does. The node agent builds pods' resolv.conf from it and
// the cluster DNS server forwards to its nameservers. It imports nothing
// of Skiff's.
package resolvconf

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Where a node's resolver configuration is by default, and where
// systemd-resolved keeps the real servers behind its 127.0.0.53 stub.
const (
	Default = "/etc/resolv.conf"
	Systemd = "/run/systemd/resolve/resolv.conf"
)

// Config is a resolv.conf's contents.
type Config struct {
	Nameservers, Searches, Options []string
}

// Parse reads a resolv.conf as the kubelet does: nameservers accumulate,
// the last search and options lines win, search domains lose a trailing
// dot, comments (# or ;) are skipped.
func Parse(data []byte) Config {
	var c Config
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				c.Nameservers = append(c.Nameservers, f[1])
			}
		case "search":
			c.Searches = nil
			for _, s := range f[1:] {
				c.Searches = append(c.Searches, strings.TrimSuffix(s, "."))
			}
		case "options":
			c.Options = slices.Clone(f[1:])
		}
	}
	return c
}

// ReadNode reads path; when it names only loopback nameservers (a local
// stub resolver, unreachable from pods and pointless to forward to) and
// stub has nameservers, stub's configuration is returned instead, as
// kubelets on systemd-resolved hosts are configured to. A missing stub is
// not an error; a missing path is.
func ReadNode(path, stub string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c := Parse(data)
	if len(c.Nameservers) > 0 && AllLoopback(c.Nameservers) {
		if alt, err := os.ReadFile(stub); err == nil {
			if s := Parse(alt); len(s.Nameservers) > 0 {
				return s, nil
			}
		}
	}
	return c, nil
}

// AllLoopback reports whether every server is a loopback address.
func AllLoopback(servers []string) bool {
	for _, s := range servers {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
