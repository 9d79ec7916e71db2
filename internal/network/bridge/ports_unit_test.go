package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/errdefs"
)

func TestNormalizePort(t *testing.T) {
	tests := []struct {
		name string
		in   PortMapping
		want PortMapping // zero = error
	}{
		{"defaults", PortMapping{HostPort: 8080, ContainerPort: 80},
			PortMapping{Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80}},
		{"upper-case udp", PortMapping{Proto: "UDP", ContainerPort: 53},
			PortMapping{Proto: "udp", HostIP: "0.0.0.0", ContainerPort: 53}},
		{"loopback", PortMapping{HostIP: "127.0.0.1", HostPort: 1, ContainerPort: 65535},
			PortMapping{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 1, ContainerPort: 65535}},
		{"mapped address", PortMapping{HostIP: "::ffff:10.0.0.1", HostPort: 80, ContainerPort: 80},
			PortMapping{Proto: "tcp", HostIP: "10.0.0.1", HostPort: 80, ContainerPort: 80}},
		{"sctp", PortMapping{Proto: "sctp", HostPort: 80, ContainerPort: 80}, PortMapping{}},
		{"no container port", PortMapping{HostPort: 80}, PortMapping{}},
		{"ipv6 wildcard", PortMapping{HostIP: "::", HostPort: 80, ContainerPort: 80}, PortMapping{}},
		{"bad address", PortMapping{HostIP: "localhost", HostPort: 80, ContainerPort: 80}, PortMapping{}},
		{"address with port", PortMapping{HostIP: "1.2.3.4:80", HostPort: 80, ContainerPort: 80}, PortMapping{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizePort(tt.in)
			if tt.want == (PortMapping{}) {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("normalizePort(%+v) = %+v, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalizePort(%+v) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPortAllocatorClash(t *testing.T) {
	k := func(s string) portKey { // "proto ip port"
		var proto, ip string
		var port uint16
		if _, err := fmt.Sscan(s, &proto, &ip, &port); err != nil {
			t.Fatal(err)
		}
		return portKey{proto: proto, ip: netip.MustParseAddr(ip), port: port}
	}
	a := newPortAllocator(0)
	for _, s := range []string{"tcp 0.0.0.0 80", "tcp 127.0.0.1 90", "udp 10.0.0.1 53"} {
		if err := a.take(k(s), "owner"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		key   string
		clash bool
	}{
		{"tcp 0.0.0.0 80", true},
		{"tcp 10.0.0.1 80", true},
		{"udp 0.0.0.0 80", false},
		{"tcp 0.0.0.0 90", true},
		{"tcp 127.0.0.1 90", true},
		{"tcp 10.0.0.1 90", false},
		{"udp 10.0.0.1 53", true},
		{"udp 0.0.0.0 53", true},
		{"udp 10.0.0.2 53", false},
		{"tcp 10.0.0.1 53", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			owner, clash := a.clash(k(tt.key))
			if clash != tt.clash {
				t.Fatalf("clash(%s) = %q, %v; want %v", tt.key, owner, clash, tt.clash)
			}
			err := a.take(k(tt.key), "other")
			if tt.clash {
				if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "already allocated") {
					t.Fatalf("take(%s) = %v, want a conflict", tt.key, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a.release(k(tt.key))
		})
	}
}

func TestPortAllocatorAllocate(t *testing.T) {
	a := newPortAllocator(ephemeralHigh - 1)
	wild := netip.IPv4Unspecified()
	refuse := uint16(ephemeralLow)
	probe := func(k portKey) error {
		if k.port == refuse {
			return fmt.Errorf("in use on the host: %w", errdefs.ErrConflict)
		}
		return nil
	}
	var got []uint16
	for range 3 {
		p, err := a.allocate("tcp", wild, "c", probe)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	want := []uint16{ephemeralHigh - 1, ephemeralHigh, ephemeralLow + 1} // wraps, skips the refused port
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	// A probe that fails for another reason stops the search.
	_, err := a.allocate("tcp", wild, "c", func(portKey) error { return fmt.Errorf("bad address: %w", errdefs.ErrInvalid) })
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("allocate with a failing probe: %v", err)
	}
	// Exhaustion.
	full := newPortAllocator(0)
	for p := ephemeralLow; p <= ephemeralHigh; p++ {
		full.used[portKey{proto: "udp", ip: wild, port: uint16(p)}] = "x"
	}
	if _, err := full.allocate("udp", wild, "c", nil); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("allocate in a full range: %v", err)
	}
	if _, err := full.allocate("tcp", wild, "c", nil); err != nil {
		t.Fatalf("tcp is a separate range: %v", err)
	}
}

func FuzzNormalizePort(f *testing.F) {
	f.Add("tcp", "", uint16(8080), uint16(80))
	f.Add("UDP", "127.0.0.1", uint16(0), uint16(53))
	f.Add("sctp", "::", uint16(1), uint16(0))
	f.Fuzz(func(t *testing.T, proto, hostIP string, hostPort, containerPort uint16) {
		in := PortMapping{Proto: proto, HostIP: hostIP, HostPort: hostPort, ContainerPort: containerPort}
		p, err := normalizePort(in)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if p.Proto != "tcp" && p.Proto != "udp" || p.ContainerPort == 0 || p.HostPort != hostPort {
			t.Fatalf("normalizePort(%+v) = %+v", in, p)
		}
		if a, err := netip.ParseAddr(p.HostIP); err != nil || !a.Is4() {
			t.Fatalf("normalizePort(%+v) host IP %q", in, p.HostIP)
		}
		if again, err := normalizePort(p); err != nil || again != p {
			t.Fatalf("normalizing twice: %+v, %v", again, err)
		}
		_ = keyOf(p).String() // must not panic
		_ = p.String()
	})
}
