package bridge

import (
	"fmt"
	"net"
	"net/netip"

	"skiff.dev/skiff/internal/errdefs"
)

// Subnet sizes a network may have: big enough for a gateway and a container,
// small enough that nobody hands Skiff half the address space by mistake.
const (
	minSubnetBits = 8
	maxSubnetBits = 30
)

// parseSubnet parses an IPv4 network in CIDR form. The address must be the
// network's own (172.20.0.0/16, not 172.20.1.5/16), as Docker insists.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: not a CIDR: %w", s, errdefs.ErrInvalid)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: only IPv4 is supported: %w", s, errdefs.ErrInvalid)
	}
	if p.Bits() < minSubnetBits || p.Bits() > maxSubnetBits {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: prefix length must be between /%d and /%d: %w",
			s, minSubnetBits, maxSubnetBits, errdefs.ErrInvalid)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: it should be %s: %w", s, m, errdefs.ErrInvalid)
	}
	return p, nil
}

// parseHostIP parses an address that must be a usable host address of sub:
// inside it, and neither its network nor its broadcast address.
func parseHostIP(what, s string, sub netip.Prefix) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Unmap().Is4() {
		return netip.Addr{}, fmt.Errorf("invalid %s %q: not an IPv4 address: %w", what, s, errdefs.ErrInvalid)
	}
	a = a.Unmap()
	if !sub.Contains(a) {
		return netip.Addr{}, fmt.Errorf("invalid %s %s: not in subnet %s: %w", what, a, sub, errdefs.ErrInvalid)
	}
	if a == sub.Addr() || a == broadcast(sub) {
		return netip.Addr{}, fmt.Errorf("invalid %s %s: the network or broadcast address of %s: %w", what, a, sub, errdefs.ErrInvalid)
	}
	return a, nil
}

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// carve returns the first subnet of length bits inside pool that overlaps
// none of taken.
func carve(pool netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, bool) {
	if bits < pool.Bits() || bits > 32 {
		return netip.Prefix{}, false
	}
	step := uint64(1) << (32 - bits)
	start := uint64(addrToUint(pool.Masked().Addr()))
	end := start + uint64(1)<<(32-pool.Bits())
	for cur := start; cur < end; cur += step {
		cand := netip.PrefixFrom(uintToAddr(uint32(cur)), bits)
		free := true
		for _, t := range taken {
			if t.Overlaps(cand) {
				free = false
				// Jump past the taken block when it is the bigger one.
				if t.Bits() < bits {
					if next := uint64(addrToUint(broadcast(t))) + 1; next > cur+step {
						cur = next - step
					}
				}
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

// nextFree returns the lowest host address of sub that is neither reserved
// (the gateway) nor used.
func nextFree(sub netip.Prefix, used func(netip.Addr) bool) (netip.Addr, bool) {
	last := broadcast(sub)
	for a := sub.Addr().Next(); a.IsValid() && a.Less(last); a = a.Next() {
		if !used(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// macFor derives a container MAC address from its IPv4 address the way Docker
// does: 02:42 followed by the four address bytes.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

func addrToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToAddr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	b := a.As4()
	return &net.IPNet{IP: net.IP(b[:]), Mask: net.CIDRMask(bits, 32)}
}
