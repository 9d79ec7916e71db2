package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

// PortMapping publishes a container port on the host (`-p`).
type PortMapping struct {
	Proto         string // "tcp" (default) or "udp"
	HostIP        string // "" or "0.0.0.0" = every host address
	HostPort      uint16 // 0 = allocate from the ephemeral range
	ContainerPort uint16
}

// The range HostPort 0 is allocated from, as Docker's.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// normalizePort checks a mapping and fills in defaults: lower-case proto,
// "tcp" when empty, HostIP "0.0.0.0" when empty.
func normalizePort(p PortMapping) (PortMapping, error) {
	p.Proto = strings.ToLower(p.Proto)
	if p.Proto == "" {
		p.Proto = "tcp"
	}
	if p.Proto != "tcp" && p.Proto != "udp" {
		return p, fmt.Errorf("invalid port mapping %s: protocol must be tcp or udp: %w", p, errdefs.ErrInvalid)
	}
	if p.ContainerPort == 0 {
		return p, fmt.Errorf("invalid port mapping %s: container port is 0: %w", p, errdefs.ErrInvalid)
	}
	if p.HostIP == "" {
		p.HostIP = "0.0.0.0"
	}
	a, err := netip.ParseAddr(p.HostIP)
	if err != nil || !a.Unmap().Is4() {
		return p, fmt.Errorf("invalid port mapping %s: host IP must be an IPv4 address: %w", p, errdefs.ErrInvalid)
	}
	p.HostIP = a.Unmap().String()
	return p, nil
}

// String formats a mapping like Docker's messages: 0.0.0.0:8080->80/tcp.
func (p PortMapping) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	proto := p.Proto
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.ContainerPort, proto)
}

// portKey is what two mappings must not share.
type portKey struct {
	proto string
	ip    netip.Addr // 0.0.0.0 = every address
	port  uint16
}

func keyOf(p PortMapping) portKey {
	return portKey{proto: p.Proto, ip: netip.MustParseAddr(p.HostIP), port: p.HostPort}
}

func (k portKey) String() string {
	return fmt.Sprintf("%s/%s", net.JoinHostPort(k.ip.String(), strconv.Itoa(int(k.port))), k.proto)
}

// portAllocator tracks the host ports taken by published mappings. It is
// pure bookkeeping; the Manager also binds each port on the host (bindPort)
// so that host processes see it taken too.
type portAllocator struct {
	used map[portKey]string // → owner (container ID)
	next uint16             // where the next ephemeral search starts
}

func newPortAllocator(next uint16) *portAllocator {
	if next < ephemeralLow || next > ephemeralHigh {
		next = ephemeralLow
	}
	return &portAllocator{used: map[portKey]string{}, next: next}
}

// clash returns the owner of a mapping that k would collide with: the same
// protocol and port on the same address, or either address a wildcard.
func (a *portAllocator) clash(k portKey) (string, bool) {
	if owner, ok := a.used[k]; ok {
		return owner, true
	}
	wild := netip.IPv4Unspecified()
	if k.ip == wild {
		for u, owner := range a.used {
			if u.proto == k.proto && u.port == k.port {
				return owner, true
			}
		}
		return "", false
	}
	owner, ok := a.used[portKey{proto: k.proto, ip: wild, port: k.port}]
	return owner, ok
}

func (a *portAllocator) take(k portKey, owner string) error {
	if other, ok := a.clash(k); ok {
		return fmt.Errorf("bind for %s failed: port is already allocated (container %s): %w", k, shortID(other), errdefs.ErrConflict)
	}
	a.used[k] = owner
	return nil
}

func (a *portAllocator) release(k portKey) { delete(a.used, k) }

// allocate finds a free ephemeral port for proto on ip, round robin from
// where the last search ended, asking probe whether the host agrees: a probe
// error of kind ErrConflict moves on to the next port, any other ends the
// search.
func (a *portAllocator) allocate(proto string, ip netip.Addr, owner string, probe func(portKey) error) (uint16, error) {
	const n = ephemeralHigh - ephemeralLow + 1
	p := a.next
	for range n {
		k := portKey{proto: proto, ip: ip, port: p}
		p++
		if p > ephemeralHigh {
			p = ephemeralLow
		}
		if _, taken := a.clash(k); taken {
			continue
		}
		if probe != nil {
			if err := probe(k); errors.Is(err, errdefs.ErrConflict) {
				continue
			} else if err != nil {
				return 0, err
			}
		}
		a.used[k] = owner
		a.next = p
		return k.port, nil
	}
	return 0, fmt.Errorf("no free %s port in %d-%d on %s: %w", proto, ephemeralLow, ephemeralHigh, ip, errdefs.ErrUnavailable)
}

// bindPort reserves a host port with a socket that is bound but never
// listens (the kernel's NAT takes the traffic first), so that host processes
// cannot take a published port and get a clear error instead. It must run in
// the host's network namespace.
func bindPort(k portKey) (int, error) {
	typ := unix.SOCK_STREAM
	if k.proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("reserve %s: %w", k, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(k.port), Addr: k.ip.As4()}); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EADDRINUSE):
			return -1, fmt.Errorf("bind for %s failed: port is already in use on the host: %w", k, errdefs.ErrConflict)
		case errors.Is(err, unix.EADDRNOTAVAIL):
			return -1, fmt.Errorf("bind for %s failed: %s is not an address of this host: %w", k, k.ip, errdefs.ErrInvalid)
		}
		return -1, fmt.Errorf("bind for %s failed: %w", k, err)
	}
	return fd, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
