package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestCaptureChainMatch(t *testing.T) {
	chains := []FilterChain{
		{Name: "any"},
		{Name: "port-80", Match: ChainMatch{Port: 80}},
		{Name: "vip-80", Match: ChainMatch{Port: 80, Addresses: []string{"10.96.0.10"}}},
		{Name: "net-80", Match: ChainMatch{Port: 80, Addresses: []string{"10.96.0.0/16"}}},
		{Name: "net-any-port", Match: ChainMatch{Addresses: []string{"10.0.0.0/8"}}},
		{Name: "port-443-only-10.1", Match: ChainMatch{Port: 443, Addresses: []string{"10.1.0.0/16"}}},
		{Name: "v6", Match: ChainMatch{Port: 80, Addresses: []string{"fd00::/8"}}},
		{Name: "first-of-two", Match: ChainMatch{Port: 9000}},
		{Name: "second-of-two", Match: ChainMatch{Port: 9000}},
	}
	cfg := &Config{Listeners: []Listener{{Name: "out", Address: "127.0.0.1:0",
		Capture: &Capture{Direction: Outbound, Chains: chains}}}}
	snap, _, err := compile(cfg, nil, (&certCache{}).get)
	if err != nil {
		t.Fatal(err)
	}
	cs := snap.listeners["out"].capture
	for _, tc := range []struct {
		name, dst, want string
	}{
		{"exact address beats prefix and bare port", "10.96.0.10:80", "vip-80"},
		{"longest prefix within the port", "10.96.3.4:80", "net-80"},
		{"port without addresses", "192.168.1.1:80", "port-80"},
		{"other port falls to port-less chains, longest prefix", "10.2.3.4:8080", "net-any-port"},
		{"other port, no prefix: catch-all", "192.168.1.1:8080", "any"},
		{"port chains that miss the address fall back to port 0", "10.200.0.1:443", "net-any-port"},
		{"port chain with address", "10.1.2.3:443", "port-443-only-10.1"},
		{"ipv6", "[fd00::1]:80", "v6"},
		{"v4-mapped address is v4", "[::ffff:10.96.0.10]:80", "vip-80"},
		{"equally specific: first wins", "1.2.3.4:9000", "first-of-two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.MustParseAddrPort(tc.dst)
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
			got := cs.match(dst)
			if got == nil || got.name != tc.want {
				t.Errorf("match(%s) = %v, want %s", tc.dst, got, tc.want)
			}
		})
	}

	noCatchAll := &captureSpec{chains: cs.chains[1:2]}
	if got := noCatchAll.match(netip.MustParseAddrPort("1.2.3.4:81")); got != nil {
		t.Errorf("unmatched connection got chain %q", got.name)
	}
}

func TestCaptureCompileErrors(t *testing.T) {
	base := func() *Config {
		return &Config{
			RouteTables: []RouteTable{{Name: "rt"}},
			Clusters:    []Cluster{{Name: "tcp", TCP: true}},
			Listeners: []Listener{{Name: "in", Address: "0.0.0.0:15006",
				Capture: &Capture{Direction: Inbound}}},
		}
	}
	for _, tc := range []struct {
		name   string
		edit   func(c *Config)
		errHas string // "" means valid
	}{
		{"valid http and tcp chains", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{
				{Name: "h", Match: ChainMatch{Port: 8080}, RouteTable: "rt"},
				{Name: "t", Match: ChainMatch{Port: 3306}, TCPCluster: "tcp"},
				{Name: "o"},
			}
		}, ""},
		{"capture needs no route table", func(c *Config) {}, ""},
		{"bad direction", func(c *Config) { c.Listeners[0].Capture.Direction = "sideways" }, "direction"},
		{"bad unmatched", func(c *Config) { c.Listeners[0].Capture.Unmatched = "drop" }, "unmatched"},
		{"chain name required", func(c *Config) { c.Listeners[0].Capture.Chains = []FilterChain{{}} }, "name: required"},
		{"duplicate chain", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a"}, {Name: "a"}}
		}, "duplicate"},
		{"bad address", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", Match: ChainMatch{Addresses: []string{"10.0.0.300"}}}}
		}, "addresses[0]"},
		{"bad port", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", Match: ChainMatch{Port: 70000}}}
		}, "port"},
		{"unknown route table", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", RouteTable: "nope"}}
		}, "no route table"},
		{"unknown cluster", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", TCPCluster: "nope"}}
		}, "no cluster"},
		{"both actions", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", RouteTable: "rt", TCPCluster: "tcp"}}
		}, "exclusive"},
		{"mtls without identity", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", MTLS: MTLSStrict}}
		}, "identity"},
		{"unknown mtls mode", func(c *Config) {
			c.Listeners[0].Capture.Chains = []FilterChain{{Name: "a", MTLS: "STRICT"}}
		}, "mtls"},
		{"bad identity", func(c *Config) {
			c.Identity = &Identity{CertPEM: []byte("x"), KeyPEM: []byte("y")}
		}, "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(cfg)
			_, _, err := compile(cfg, nil, (&certCache{}).get)
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.errHas != "" && err == nil:
				t.Fatalf("no error, want one with %q", tc.errHas)
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Fatalf("error %v does not mention %q", err, tc.errHas)
			}
		})
	}
}

func TestCaptureBadIdentityReportedOnce(t *testing.T) {
	count := func(listeners int) int {
		cfg := &Config{Identity: &Identity{CertPEM: []byte("x"), KeyPEM: []byte("y"), RootsPEM: []byte("z")}}
		for i := range listeners {
			cfg.Listeners = append(cfg.Listeners, Listener{Name: fmt.Sprint("l", i), Address: fmt.Sprint("0.0.0.0:1500", i),
				Capture: &Capture{Direction: Outbound}})
		}
		_, _, err := compile(cfg, nil, (&certCache{}).get)
		if err == nil {
			t.Fatal("bad identity accepted")
		}
		return strings.Count(err.Error(), "identity:")
	}
	if one, two := count(1), count(2); one != two {
		t.Fatalf("identity reported %d times with one capture listener, %d with two", one, two)
	}
}
