package dockercli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestParsePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	v6 := netip.MustParseAddr("::1")
	tests := []struct {
		name    string
		specs   []string
		want    network.PortMap
		wantErr string
	}{
		{name: "container port only", specs: []string{"80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{}}}},
		{name: "host and container", specs: []string{"8080:80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}},
		{name: "udp", specs: []string{"5353:53/udp"}, want: network.PortMap{network.MustParsePort("53/udp"): {{HostPort: "5353"}}}},
		{name: "sctp upper case", specs: []string{"9:9/SCTP"}, want: network.PortMap{network.MustParsePort("9/sctp"): {{HostPort: "9"}}}},
		{name: "ip", specs: []string{"127.0.0.1:8080:80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: lo, HostPort: "8080"}}}},
		{name: "ip random host port", specs: []string{"127.0.0.1::80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: lo}}}},
		{name: "bracketed ipv6", specs: []string{"[::1]:8080:80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: v6, HostPort: "8080"}}}},
		{name: "bare ipv6", specs: []string{"::1:8080:80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: v6, HostPort: "8080"}}}},
		{name: "ranges", specs: []string{"8000-8001:80-81"}, want: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "8000"}},
			network.MustParsePort("81/tcp"): {{HostPort: "8001"}},
		}},
		{name: "host range for one port", specs: []string{"8000-8010:80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8000-8010"}}}},
		{name: "container range only", specs: []string{"7000-7001"}, want: network.PortMap{
			network.MustParsePort("7000/tcp"): {{}}, network.MustParsePort("7001/tcp"): {{}},
		}},
		{name: "same port twice", specs: []string{"8080:80", "127.0.0.1:9090:80"}, want: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "8080"}, {HostIP: lo, HostPort: "9090"}},
		}},
		{name: "long form", specs: []string{"published=8080,target=80,protocol=udp"}, want: network.PortMap{network.MustParsePort("80/udp"): {{HostPort: "8080"}}}},
		{name: "long form no published", specs: []string{"target=80"}, want: network.PortMap{network.MustParsePort("80/tcp"): {{}}}},
		{name: "garbage", specs: []string{"x"}, wantErr: "invalid containerPort: x"},
		{name: "empty", specs: []string{""}, wantErr: "no port specified: <empty>"},
		{name: "no container port", specs: []string{"8080:"}, wantErr: "no port specified: 8080:<empty>"},
		{name: "container port zero", specs: []string{"0"}, wantErr: "invalid containerPort: 0"},
		{name: "container port too big", specs: []string{"65536"}, wantErr: "invalid containerPort: 65536"},
		{name: "host port too big", specs: []string{"70000:80"}, wantErr: "invalid hostPort: 70000"},
		{name: "negative", specs: []string{"-1:80"}, wantErr: "invalid hostPort: -1"},
		{name: "reversed range", specs: []string{"90-80"}, wantErr: "invalid containerPort: 90-80"},
		{name: "mismatched ranges", specs: []string{"1-3:4-5"}, wantErr: "invalid ranges specified for container and host Ports: 4-5 and 1-3"},
		{name: "bad ip", specs: []string{"300.0.0.1:80:80"}, wantErr: "invalid IP address: 300.0.0.1"},
		{name: "too many parts", specs: []string{"80:80:80:80"}, wantErr: "invalid IP address: 80:80"},
		{name: "zone", specs: []string{"[fe80::1%eth0]:80:80"}, wantErr: "invalid IP address: [fe80::1%eth0]"},
		{name: "bad proto", specs: []string{"80/icmp"}, wantErr: "invalid proto: icmp"},
		{name: "plus sign", specs: []string{"+80"}, wantErr: "invalid containerPort: +80"},
		{name: "long form bad key", specs: []string{"target=80,bogus=1"}, wantErr: `invalid publish opts key "bogus"`},
		{name: "long form no target", specs: []string{"published=80"}, wantErr: "missing mandatory field 'target'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exposed, bindings, err := ParsePorts(tt.specs)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalJSON(bindings, tt.want) {
				t.Errorf("bindings %v, want %v", bindings, tt.want)
			}
			for p := range tt.want {
				if _, ok := exposed[p]; !ok {
					t.Errorf("%s not exposed", p)
				}
			}
			if len(exposed) != len(tt.want) {
				t.Errorf("exposed %v", exposed)
			}
		})
	}
}

func TestCheckExpose(t *testing.T) {
	for spec, wantErr := range map[string]string{
		"80": "", "80/udp": "", "8000-8010": "",
		"80:80":  "invalid port format for --expose: 80:80",
		"x":      `invalid range format for --expose: x, error: invalid port "x"`,
		"80/gre": "invalid proto: gre",
	} {
		_, err := checkExpose(spec)
		if (err == nil) != (wantErr == "") || err != nil && err.Error() != wantErr {
			t.Errorf("checkExpose(%q) = %v, want %q", spec, err, wantErr)
		}
	}
}

func TestDisplayPorts(t *testing.T) {
	any4 := netip.MustParseAddr("0.0.0.0")
	any6 := netip.MustParseAddr("::")
	tests := []struct {
		name  string
		ports []container.PortSummary
		want  string
	}{
		{name: "none"},
		{name: "exposed only", ports: []container.PortSummary{{PrivatePort: 80, Type: "tcp"}}, want: "80/tcp"},
		{name: "mapped", ports: []container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}}, want: "0.0.0.0:8080->80/tcp"},
		{name: "ipv6", ports: []container.PortSummary{{IP: any6, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}}, want: "[::]:8080->80/tcp"},
		{name: "consecutive same ports grouped", ports: []container.PortSummary{
			{IP: any4, PrivatePort: 8001, PublicPort: 8001, Type: "tcp"},
			{IP: any4, PrivatePort: 8000, PublicPort: 8000, Type: "tcp"},
		}, want: "0.0.0.0:8000-8001->8000-8001/tcp"},
		{name: "exposed ranges and gaps", ports: []container.PortSummary{
			{PrivatePort: 1, Type: "tcp"}, {PrivatePort: 2, Type: "tcp"}, {PrivatePort: 5, Type: "tcp"}, {PrivatePort: 53, Type: "udp"},
		}, want: "1-2/tcp, 5/tcp, 53/udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := displayPorts(tt.ports); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzParsePortSpec checks that no input panics and that what parses
// is a valid mapping.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "[::1]::80", "8000-8010:80-90", "1-3:4-5",
		"published=1,target=2", "::1:2:3", "0-65535", "65535:65535/sctp", ":", "/", "-", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ms, err := ParsePortSpec(spec)
		if err != nil {
			return
		}
		if len(ms) == 0 {
			t.Fatalf("%q parsed to no mappings", spec)
		}
		for _, m := range ms {
			if !m.Port.IsValid() || m.Port.Num() == 0 {
				t.Fatalf("%q: invalid port %v", spec, m.Port)
			}
			switch m.Port.Proto() {
			case network.TCP, network.UDP, network.SCTP:
			default:
				t.Fatalf("%q: protocol %q", spec, m.Port.Proto())
			}
			if hp := m.Binding.HostPort; hp != "" {
				lo, hi, err := parsePortRange(hp)
				if err != nil || hi < lo {
					t.Fatalf("%q: host port %q does not parse back", spec, hp)
				}
			}
			if strings.Contains(m.Binding.HostIP.String(), "%") {
				t.Fatalf("%q: zoned host IP", spec)
			}
		}
	})
}
