package servicelb

import (
	"net/netip"
	"testing"
)

func TestParsePool(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		in, out []string
		first   string // first IPv4 address handed out
		err     bool
	}{
		{name: "range", entries: []string{"203.0.113.100-203.0.113.120"},
			in: []string{"203.0.113.100", "203.0.113.110", "203.0.113.120"}, out: []string{"203.0.113.99", "203.0.113.121", "::1"}, first: "203.0.113.100"},
		{name: "CIDR without network and broadcast", entries: []string{"203.0.113.0/30"},
			in: []string{"203.0.113.1", "203.0.113.2"}, out: []string{"203.0.113.0", "203.0.113.3"}, first: "203.0.113.1"},
		{name: "/32 and /31 keep every address", entries: []string{"198.51.100.7/32", "198.51.100.8/31"},
			in: []string{"198.51.100.7", "198.51.100.8", "198.51.100.9"}, first: "198.51.100.7"},
		{name: "single address and IPv6 range", entries: []string{"198.51.100.5", "2001:db8::10-2001:db8::1f"},
			in: []string{"198.51.100.5", "2001:db8::10", "2001:db8::1f"}, out: []string{"2001:db8::20"}, first: "198.51.100.5"},
		{name: "IPv6 CIDR", entries: []string{"2001:db8::/126"}, in: []string{"2001:db8::", "2001:db8::3"}},
		{name: "bad range order", entries: []string{"203.0.113.9-203.0.113.1"}, err: true},
		{name: "mixed families", entries: []string{"203.0.113.1-2001:db8::1"}, err: true},
		{name: "junk", entries: []string{"pool"}, err: true},
		{name: "bad CIDR", entries: []string{"203.0.113.0/33"}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePool(tc.entries)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			for _, s := range tc.in {
				if !p.Contains(netip.MustParseAddr(s)) {
					t.Errorf("%s not in %s", s, p)
				}
			}
			for _, s := range tc.out {
				if p.Contains(netip.MustParseAddr(s)) {
					t.Errorf("%s in %s", s, p)
				}
			}
			if tc.first != "" {
				ip, ok := p.first(true, func(netip.Addr) bool { return true })
				if !ok || ip.String() != tc.first {
					t.Errorf("first %v, want %s", ip, tc.first)
				}
			}
		})
	}
	if p, err := ParsePool(nil); p != nil || err != nil || p.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("empty pool")
	}
}

func TestAllocator(t *testing.T) {
	p, _ := ParsePool([]string{"203.0.113.1-203.0.113.2"})
	a := newAllocator(p)
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	if got, _ := a.next("ns/a", true); got != ip("203.0.113.1") {
		t.Fatalf("a got %v", got)
	}
	if got, _ := a.next("ns/a", true); got != ip("203.0.113.1") {
		t.Fatalf("a again got %v", got)
	}
	if holder, ok := a.claim("ns/b", ip("203.0.113.1")); ok || holder != "ns/a" {
		t.Fatalf("b claimed a's address: %v %q", ok, holder)
	}
	if _, ok := a.claim("ns/b", ip("203.0.113.9")); ok {
		t.Fatal("claimed outside the pool")
	}
	if got, _ := a.next("ns/b", true); got != ip("203.0.113.2") {
		t.Fatalf("b got %v", got)
	}
	if _, ok := a.next("ns/c", true); ok {
		t.Fatal("c got an address from an empty pool")
	}
	if _, ok := a.next("ns/d", false); ok {
		t.Fatal("d got an IPv6 address from an IPv4 pool")
	}
	if w := a.release("ns/a"); len(w) != 2 {
		t.Fatalf("waiters %v, want c and d", w)
	}
	if got, _ := a.next("ns/c", true); got != ip("203.0.113.1") {
		t.Fatalf("c got %v after a left", got)
	}
	if w := a.release("ns/nobody"); w != nil {
		t.Errorf("releasing nothing woke %v", w)
	}
}
