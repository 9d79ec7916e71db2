package podruntime

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
)

const managedHosts = "# Kubernetes-managed hosts file.\n" +
	"127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

func TestHostsFile(t *testing.T) {
	aliases := []corev1.HostAlias{{IP: "10.0.0.9", Hostnames: []string{"a.local", "b.local"}}, {IP: "::1", Hostnames: []string{"six"}}}
	for _, tc := range []struct {
		name, ip, hostname, domain string
		aliases                    []corev1.HostAlias
		want                       string
	}{
		{"plain", "10.244.0.2", "web", "", nil, managedHosts + "10.244.0.2\tweb\n"},
		{"with a domain", "10.244.0.2", "db-0", "db.ns.svc.cluster.local", nil,
			managedHosts + "10.244.0.2\tdb-0.db.ns.svc.cluster.local\tdb-0\n"},
		{"with aliases", "10.244.0.2", "web", "", aliases,
			managedHosts + "10.244.0.2\tweb\n\n# Entries added by HostAliases.\n10.0.0.9\ta.local\tb.local\n::1\tsix\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(hostsFile(tc.ip, tc.hostname, tc.domain, tc.aliases)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	got := string(nodeHostsFile([]byte("127.0.0.1 localhost\n192.0.2.2 node"), aliases[:1]))
	want := "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.0.2.2 node\n\n# Entries added by HostAliases.\n10.0.0.9\ta.local\tb.local\n"
	if got != want {
		t.Errorf("host network:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range [][]corev1.HostAlias{{{IP: "nope", Hostnames: []string{"x"}}}, {{IP: "1.2.3.4", Hostnames: []string{"a b"}}}} {
		if err := checkHostAliases(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("checkHostAliases(%+v) = %v", bad, err)
		}
	}
}

func TestResolvConf(t *testing.T) {
	node := []byte("# the node's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions rotate\n")
	for _, tc := range []struct {
		name                       string
		servers, searches, options []string
		want                       string
	}{
		{"cluster DNS", []string{"10.96.0.10"}, []string{"ns.svc.cluster.local", "svc.cluster.local"}, []string{"ndots:5"},
			"nameserver 10.96.0.10\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5\n"},
		{"the node's", nil, nil, nil, string(node)},
		{"the node's servers, own searches", nil, []string{"a.example"}, nil,
			"nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch a.example\noptions rotate\n"},
		{"servers only", []string{"1.1.1.1"}, nil, nil, "nameserver 1.1.1.1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolvConf(node, tc.servers, tc.searches, tc.options)
			if err != nil || string(got) != tc.want {
				t.Errorf("got %v:\n%s\nwant:\n%s", err, got, tc.want)
			}
		})
	}
	if _, err := resolvConf(node, []string{"1.1.1.1\nnameserver 6.6.6.6"}, nil, nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a server with a newline: %v", err)
	}
}
