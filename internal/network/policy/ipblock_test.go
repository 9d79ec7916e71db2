package policy

import (
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestBlockRanges(t *testing.T) {
	cases := []struct {
		name   string
		cidr   string
		except []string
		want   string // ranges, or "ipv6", or "error"
	}{
		{"prefix", "10.0.0.0/8", nil, "[10.0.0.0/8]"},
		{"host bits are masked", "10.1.2.3/16", nil, "[10.1.0.0/16]"},
		{"single address", "192.0.2.7/32", nil, "[192.0.2.7/32]"},
		{"whole space", "0.0.0.0/0", nil, "[0.0.0.0/0]"},
		{"hole in the middle", "10.0.0.0/8", []string{"10.1.0.0/16"}, "[10.0.0.0/16 10.2.0.0-10.255.255.255]"},
		{"hole at the start", "10.0.0.0/8", []string{"10.0.0.0/9"}, "[10.128.0.0/9]"},
		{"hole at the end", "10.0.0.0/8", []string{"10.128.0.0/9"}, "[10.0.0.0/9]"},
		{"top of the space", "0.0.0.0/0", []string{"0.0.0.0/1"}, "[128.0.0.0/1]"},
		{"two holes", "172.17.0.0/16", []string{"172.17.1.0/24", "172.17.3.0/24"},
			"[172.17.0.0/24 172.17.2.0/24 172.17.4.0-172.17.255.255]"},
		{"overlapping holes", "10.0.0.0/24", []string{"10.0.0.0/25", "10.0.0.0/26"}, "[10.0.0.128/25]"},
		{"except everything", "10.0.0.0/24", []string{"10.0.0.0/16"}, "[]"},
		{"except outside", "10.0.0.0/24", []string{"192.168.0.0/16"}, "[10.0.0.0/24]"},
		{"IPv6 except ignored", "10.0.0.0/24", []string{"fd00::/8"}, "[10.0.0.0/24]"},
		{"IPv6 block", "fd00::/8", nil, "ipv6"},
		{"bad cidr", "10.0.0.0", nil, "error"},
		{"bad except", "10.0.0.0/8", []string{"x"}, "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, ok, err := blockRanges(&networkingv1.IPBlock{CIDR: tc.cidr, Except: tc.except})
			got := fmt.Sprint(rs)
			switch {
			case err != nil:
				got = "error"
			case !ok:
				got = "ipv6"
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNamesFitNftables(t *testing.T) {
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a'
		}
		return string(b)
	}
	ns, name := long(63), long(253)
	c := chainName("out", ns, name)
	if len(c) > maxNameLen {
		t.Errorf("chain name of %d bytes", len(c))
	}
	if c == chainName("out", ns, name[:252]+"b") {
		t.Error("two long names shorten to the same chain")
	}
	if got := chainName("in", "default", "deny-all"); got != "in/default/deny-all" {
		t.Errorf("short name changed: %q", got)
	}
	if got := clip(long(500)); len(got) != maxCommentLen {
		t.Errorf("comment clipped to %d bytes", len(got))
	}
}
