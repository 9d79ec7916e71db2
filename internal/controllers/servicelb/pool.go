package servicelb

import (
	"fmt"
	"net/netip"
	"strings"

	"skiff.dev/skiff/internal/errdefs"
)

// Pool is a set of addresses LoadBalancer Services may get: CIDRs,
// ranges and single addresses. It is read-only once parsed, so any
// number of goroutines may use it.
type Pool struct {
	ranges []addrRange
}

// addrRange is first..last inclusive, one family.
type addrRange struct{ first, last netip.Addr }

// ParsePool reads pool entries: "203.0.113.0/28" (an IPv4 CIDR gives its
// addresses without the network and broadcast ones, unless it is a /31 or
// /32), "203.0.113.100-203.0.113.120", "203.0.113.7", or IPv6 forms of
// the same. Empty input is a nil Pool.
func ParsePool(entries []string) (*Pool, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	p := &Pool{}
	for _, e := range entries {
		r, err := parseRange(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("address pool entry %q: %w", e, err)
		}
		p.ranges = append(p.ranges, r)
	}
	return p, nil
}

func parseRange(e string) (addrRange, error) {
	if first, last, ok := strings.Cut(e, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		switch {
		case err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "":
			return addrRange{}, fmt.Errorf("not a range of addresses: %w", errdefs.ErrInvalid)
		case a.Unmap().Is4() != b.Unmap().Is4():
			return addrRange{}, fmt.Errorf("range mixes IPv4 and IPv6: %w", errdefs.ErrInvalid)
		case b.Unmap().Less(a.Unmap()):
			return addrRange{}, fmt.Errorf("range ends before it starts: %w", errdefs.ErrInvalid)
		}
		return addrRange{a.Unmap(), b.Unmap()}, nil
	}
	if strings.Contains(e, "/") {
		pfx, err := netip.ParsePrefix(e)
		if err != nil {
			return addrRange{}, fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
		}
		pfx = pfx.Masked()
		first, last := pfx.Addr(), lastAddr(pfx)
		if first.Is4() && pfx.Bits() < 31 {
			first, last = first.Next(), last.Prev()
		}
		return addrRange{first, last}, nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil || a.Zone() != "" {
		return addrRange{}, fmt.Errorf("not an address, range or CIDR: %w", errdefs.ErrInvalid)
	}
	return addrRange{a.Unmap(), a.Unmap()}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Contains reports whether ip is in the pool. A nil Pool has nothing.
func (p *Pool) Contains(ip netip.Addr) bool {
	if p == nil {
		return false
	}
	ip = ip.Unmap()
	for _, r := range p.ranges {
		if r.first.Is4() == ip.Is4() && r.first.Compare(ip) <= 0 && ip.Compare(r.last) <= 0 {
			return true
		}
	}
	return false
}

// first returns the first address of family v4 (or v6) in pool order for
// which free says yes.
func (p *Pool) first(v4 bool, free func(netip.Addr) bool) (netip.Addr, bool) {
	if p == nil {
		return netip.Addr{}, false
	}
	for _, r := range p.ranges {
		if r.first.Is4() != v4 {
			continue
		}
		for ip := r.first; ip.IsValid() && ip.Compare(r.last) <= 0; ip = ip.Next() {
			if free(ip) {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// String lists the pool's ranges.
func (p *Pool) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, len(p.ranges))
	for i, r := range p.ranges {
		parts[i] = r.first.String() + "-" + r.last.String()
	}
	return strings.Join(parts, ",")
}
