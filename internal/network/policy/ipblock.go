package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
)

// blockRanges returns an IPv4 ipBlock as sorted, disjoint address ranges:
// its CIDR minus every except. ok is false for an IPv6 block (this table
// holds IPv4 only; the peer then matches nothing). A malformed block is an
// error (validation keeps them out; the peer then matches nothing).
func blockRanges(b *networkingv1.IPBlock) (rs []Range, ok bool, err error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, false, fmt.Errorf("ipBlock cidr %q: %w", b.CIDR, err)
	}
	if !cidr.Addr().Is4() {
		return nil, false, nil
	}
	type span struct{ lo, hi uint64 } // inclusive; uint64 so that hi+1 never wraps
	toSpan := func(p netip.Prefix) span {
		p = p.Masked()
		lo := uint64(addrUint(p.Addr()))
		return span{lo, lo + 1<<(32-p.Bits()) - 1}
	}
	spans := []span{toSpan(cidr)}
	for _, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, false, fmt.Errorf("ipBlock except %q: %w", e, err)
		}
		if !ex.Addr().Is4() {
			continue
		}
		x := toSpan(ex)
		var next []span
		for _, s := range spans {
			if x.hi < s.lo || x.lo > s.hi {
				next = append(next, s)
				continue
			}
			if x.lo > s.lo {
				next = append(next, span{s.lo, x.lo - 1})
			}
			if x.hi < s.hi {
				next = append(next, span{x.hi + 1, s.hi})
			}
		}
		spans = next
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	for _, s := range spans {
		rs = append(rs, Range{From: uintAddr(uint32(s.lo)), To: uintAddr(uint32(s.hi))})
	}
	return rs, true, nil
}
