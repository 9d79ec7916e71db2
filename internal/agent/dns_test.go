package agent

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/network/resolvconf"
)

func TestParseResolv(t *testing.T) {
	got := settingsOf(resolvconf.Parse([]byte("# comment\n; other\nnameserver 192.0.2.1\nsearch a.example. b.example\nnameserver 192.0.2.2\noptions ndots:2\noptions edns0 trust-ad\nsearch c.example.\nnameserver\n")))
	want := resolvSettings{servers: []string{"192.0.2.1", "192.0.2.2"}, searches: []string{"c.example"}, options: []string{"edns0", "trust-ad"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPodDNS(t *testing.T) {
	host := resolvSettings{servers: []string{"192.0.2.53"}, searches: []string{"corp.example"}, options: []string{"ndots:1", "timeout:2"}}
	cluster := []string{"10.96.0.10"}
	pod := func(policy corev1.DNSPolicy, hostNet bool, dc *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: dc},
		}
	}
	clusterSearch := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		cluster []string
		want    resolvSettings
		warn    []string // event reasons
	}{
		{name: "ClusterFirst", pod: pod(corev1.DNSClusterFirst, false, nil), cluster: cluster,
			want: resolvSettings{servers: cluster, searches: clusterSearch, options: []string{"ndots:5"}}},
		{name: "empty policy is ClusterFirst", pod: pod("", false, nil), cluster: cluster,
			want: resolvSettings{servers: cluster, searches: clusterSearch, options: []string{"ndots:5"}}},
		{name: "ClusterFirst on the host network is Default", pod: pod(corev1.DNSClusterFirst, true, nil), cluster: cluster, want: host},
		{name: "ClusterFirstWithHostNet", pod: pod(corev1.DNSClusterFirstWithHostNet, true, nil), cluster: cluster,
			want: resolvSettings{servers: cluster, searches: clusterSearch, options: []string{"ndots:5"}}},
		{name: "ClusterFirst without cluster DNS falls back", pod: pod(corev1.DNSClusterFirst, false, nil), want: host, warn: []string{"MissingClusterDNS"}},
		{name: "Default", pod: pod(corev1.DNSDefault, false, nil), cluster: cluster, want: host},
		{name: "None with dnsConfig", cluster: cluster, pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{
			Nameservers: []string{"198.51.100.1"}, Searches: []string{"my.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}}}),
			want: resolvSettings{servers: []string{"198.51.100.1"}, searches: []string{"my.example"}, options: []string{"ndots:2", "edns0"}}},
		{name: "ClusterFirst merged with dnsConfig", cluster: cluster, pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"198.51.100.1", "10.96.0.10"}, Searches: []string{"my.example", "cluster.local"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "single-request-reopen"}}}),
			want: resolvSettings{servers: []string{"10.96.0.10", "198.51.100.1"}, searches: append(clusterSearch, "my.example"),
				options: []string{"ndots:2", "single-request-reopen"}}},
		{name: "Default merged with dnsConfig", cluster: cluster, pod: pod(corev1.DNSDefault, false, &corev1.PodDNSConfig{
			Searches: []string{"my.example"}, Options: []corev1.PodDNSConfigOption{{Name: "timeout", Value: ptr("5")}}}),
			want: resolvSettings{servers: host.servers, searches: []string{"corp.example", "my.example"}, options: []string{"ndots:1", "timeout:5"}}},
		{name: "too many nameservers", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}}),
			want: resolvSettings{servers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}}, warn: []string{"DNSConfigForming"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warns := podDNS(tc.pod, tc.cluster, "cluster.local", host)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			var reasons []string
			for _, w := range warns {
				reasons = append(reasons, w.reason)
			}
			if !reflect.DeepEqual(reasons, tc.warn) {
				t.Errorf("warnings %v, want %v", warns, tc.warn)
			}
		})
	}
}

func TestSearchLimits(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("d%02d.example", i))
	}
	long := strings.Repeat("a", 254)
	tests := []struct {
		name string
		in   []string
		want int
		cut  bool
	}{
		{name: "fits", in: many[:5], want: 5},
		{name: "too many", in: many, want: 32, cut: true},
		{name: "too long a domain", in: []string{"ok.example", long}, want: 1, cut: true},
		{name: "line too long", in: []string{strings.Repeat("b", 250), strings.Repeat("c", 250), strings.Repeat("d", 250),
			strings.Repeat("e", 250), strings.Repeat("f", 250), strings.Repeat("g", 250), strings.Repeat("h", 250), strings.Repeat("i", 250), strings.Repeat("j", 250)},
			want: 8, cut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := fitSearches(tc.in)
			if len(got) != tc.want || cut != tc.cut {
				t.Errorf("%d domains, cut %v; want %d, %v", len(got), cut, tc.want, tc.cut)
			}
		})
	}
}
