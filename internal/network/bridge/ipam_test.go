package bridge

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/errdefs"
)

func TestParseSubnet(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" = error
	}{
		{"slash 16", "172.20.0.0/16", "172.20.0.0/16"},
		{"slash 24", "10.1.2.0/24", "10.1.2.0/24"},
		{"smallest", "10.1.2.4/30", "10.1.2.4/30"},
		{"biggest", "10.0.0.0/8", "10.0.0.0/8"},
		{"host bits", "10.1.2.3/24", ""},
		{"slash 31", "10.1.2.0/31", ""},
		{"slash 32", "10.1.2.1/32", ""},
		{"slash 7", "10.0.0.0/7", ""},
		{"no prefix", "10.1.2.0", ""},
		{"ipv6", "fd00::/64", ""},
		{"mapped ipv4", "::ffff:10.0.0.0/104", ""},
		{"garbage", "banana", ""},
		{"empty", "", ""},
		{"spaces", " 10.0.0.0/8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSubnet(tt.in)
			if tt.want == "" {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("parseSubnet(%q) = %v, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("parseSubnet(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseHostIP(t *testing.T) {
	sub := netip.MustParsePrefix("172.20.0.0/24")
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"first", "172.20.0.1", true},
		{"last", "172.20.0.254", true},
		{"network", "172.20.0.0", false},
		{"broadcast", "172.20.0.255", false},
		{"outside", "172.20.1.1", false},
		{"mapped", "::ffff:172.20.0.9", true},
		{"ipv6", "fd00::1", false},
		{"garbage", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseHostIP("ip", tt.in, sub)
			if tt.ok != (err == nil) {
				t.Fatalf("parseHostIP(%q) = %v, %v", tt.in, a, err)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error kind: %v", err)
			}
			if err == nil && !a.Is4() {
				t.Fatalf("parseHostIP(%q) = %v, want a plain IPv4 address", tt.in, a)
			}
		})
	}
}

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":     "10.255.255.255",
		"172.17.0.0/16":  "172.17.255.255",
		"192.168.1.4/30": "192.168.1.7",
		"0.0.0.0/0":      "255.255.255.255",
		"1.2.3.4/32":     "1.2.3.4",
	} {
		if got := broadcast(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCarve(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		pool  string
		bits  int
		taken []netip.Prefix
		want  string // "" = none
	}{
		{"empty pool", "172.18.0.0/16", 24, nil, "172.18.0.0/24"},
		{"first taken", "172.18.0.0/16", 24, []netip.Prefix{p("172.18.0.0/24")}, "172.18.1.0/24"},
		{"small hole", "172.18.0.0/16", 24, []netip.Prefix{p("172.18.0.0/24"), p("172.18.2.0/24")}, "172.18.1.0/24"},
		{"a host route inside", "172.18.0.0/16", 24, []netip.Prefix{p("172.18.0.7/32")}, "172.18.1.0/24"},
		{"a big block", "172.18.0.0/16", 24, []netip.Prefix{p("172.18.0.0/17")}, "172.18.128.0/24"},
		{"covering block", "172.18.0.0/16", 24, []netip.Prefix{p("172.16.0.0/12")}, ""},
		{"full", "10.0.0.0/30", 30, []netip.Prefix{p("10.0.0.0/30")}, ""},
		{"block bigger than pool", "10.0.0.0/24", 16, nil, ""},
		{"end of address space", "255.255.255.0/24", 25, []netip.Prefix{p("255.255.255.0/25")}, "255.255.255.128/25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := carve(p(tt.pool), tt.bits, tt.taken)
			if tt.want == "" {
				if ok {
					t.Fatalf("carve = %v, want none", got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Fatalf("carve = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestNextFree(t *testing.T) {
	sub := netip.MustParsePrefix("10.0.0.0/29") // .1-.6 usable
	used := map[netip.Addr]bool{netip.MustParseAddr("10.0.0.1"): true, netip.MustParseAddr("10.0.0.2"): true}
	a, ok := nextFree(sub, func(a netip.Addr) bool { return used[a] })
	if !ok || a.String() != "10.0.0.3" {
		t.Fatalf("nextFree = %v, %v", a, ok)
	}
	for i := 3; i <= 6; i++ {
		used[netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})] = true
	}
	if a, ok := nextFree(sub, func(a netip.Addr) bool { return used[a] }); ok {
		t.Fatalf("nextFree in a full subnet = %v", a)
	}
}

func TestMACFor(t *testing.T) {
	if got := macFor(netip.MustParseAddr("172.17.0.2")).String(); got != "02:42:ac:11:00:02" {
		t.Fatalf("macFor = %s", got)
	}
}

func TestHostIfName(t *testing.T) {
	long := strings.Repeat("ab12", 16)
	names := map[string]bool{}
	for _, c := range []struct{ cid, nid string }{
		{long, "n1"}, {long, "n2"}, {"c1", "n1"}, {"c1", "n2"}, {"x.y-z_", "n1"}, {"a", "n1"},
	} {
		got := hostIfName(c.cid, c.nid)
		if len(got) != 15 || !strings.HasPrefix(got, "veth") || validIfName(got) != nil {
			t.Errorf("hostIfName(%q, %q) = %q", c.cid, c.nid, got)
		}
		if names[got] {
			t.Errorf("hostIfName(%q, %q) = %q, a duplicate", c.cid, c.nid, got)
		}
		names[got] = true
	}
	if got := hostIfName(long, "n1"); !strings.HasPrefix(got, "vethab12a") {
		t.Errorf("hostIfName does not start with the container id: %s", got)
	}
}

func FuzzParseSubnet(f *testing.F) {
	for _, s := range []string{"172.18.0.0/16", "10.0.0.0/8", "1.2.3.4/30", "fd00::/64", "x", "0.0.0.0/0", "10.0.0.0/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseSubnet(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if !p.Addr().Is4() || p.Bits() < minSubnetBits || p.Bits() > maxSubnetBits || p.Masked() != p {
			t.Fatalf("parseSubnet(%q) accepted %v", s, p)
		}
		if again, err := parseSubnet(p.String()); err != nil || again != p {
			t.Fatalf("round trip of %v: %v, %v", p, again, err)
		}
		gw := p.Addr().Next()
		if _, err := parseHostIP("gateway", gw.String(), p); err != nil {
			t.Fatalf("first address %v of %v refused: %v", gw, p, err)
		}
		if b := broadcast(p); !p.Contains(b) || p.Contains(b.Next()) && b.Next().IsValid() {
			t.Fatalf("broadcast(%v) = %v", p, b)
		}
	})
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want bool
	}{
		{"app", 64, true},
		{"my_net.v2-x", 64, true},
		{"A1", 64, true},
		{"", 64, false},
		{"-x", 64, false},
		{".x", 64, false},
		{"a/b", 64, false},
		{"a b", 64, false},
		{"né", 64, false},
		{strings.Repeat("a", 64), 64, true},
		{strings.Repeat("a", 65), 64, false},
	}
	for _, tt := range tests {
		if got := validName(tt.in, tt.max); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
