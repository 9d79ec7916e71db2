package apiserver

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"skiff.dev/skiff/internal/resources"
)

// Cluster IPs are recorded the way upstream records them since 1.33: one
// networking.k8s.io/v1 IPAddress object per address, named after it, with
// a parentRef to its Service. They are stored where a served IPAddress
// kind keeps its objects, so `kubectl get ipaddresses` lists them.
//
// Node ports have no upstream object; each is a small JSON record under
// nodePortPrefix, keyed by port number.

// foreignOwner marks records that name no Service: the repair pass leaves
// them alone.
const foreignOwner = "\x00foreign"

// ipAllocatorName is the managed-by label value of upstream's allocator.
const ipAllocatorName = "ipallocator.k8s.io"

// nodePortPrefix is the store prefix of node port records.
const nodePortPrefix = "/registry/skiff/servicenodeports/"

// ipAddressResource is the resource IPAddress records are stored as.
var ipAddressResource = resources.Resource{
	Group: networkingv1.GroupName, Version: "v1", Kind: "IPAddress", Plural: "ipaddresses", Singular: "ipaddress",
}

// ipAddressCodec stores records as IPAddress objects.
type ipAddressCodec struct {
	kind   *kind
	family string
}

func (c ipAddressCodec) encode(name string, o owner, now time.Time) ([]byte, error) {
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			UID:               types.UID(uuid.NewUUID()),
			CreationTimestamp: metav1.NewTime(now),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: c.family,
				networkingv1.LabelManagedBy:       ipAllocatorName,
			},
		},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Resource: "services", Namespace: o.Namespace, Name: o.Name,
		}},
	}
	return c.kind.encode(ip)
}

func (c ipAddressCodec) decode(data []byte) (owner, time.Time, error) {
	obj, err := c.kind.decode(data, 0)
	if err != nil {
		return owner{}, time.Time{}, err
	}
	ip := obj.(*networkingv1.IPAddress)
	ref := ip.Spec.ParentRef
	if ref == nil || ref.Group != "" || ref.Resource != "services" || ip.Labels[networkingv1.LabelManagedBy] != ipAllocatorName {
		// Not written by this allocator (a client reserved the address):
		// taken, but never the repair pass's to free.
		return owner{Namespace: foreignOwner, Name: ip.Name}, ip.CreationTimestamp.Time, nil
	}
	return owner{Namespace: ref.Namespace, Name: ref.Name}, ip.CreationTimestamp.Time, nil
}

// nodePortRecord is the stored form of a node port record.
type nodePortRecord struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
}

type nodePortCodec struct{}

func (nodePortCodec) encode(_ string, o owner, now time.Time) ([]byte, error) {
	return json.Marshal(nodePortRecord{Namespace: o.Namespace, Name: o.Name, Created: now.UTC()})
}

func (nodePortCodec) decode(data []byte) (owner, time.Time, error) {
	var r nodePortRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return owner{}, time.Time{}, err
	}
	return owner{Namespace: r.Namespace, Name: r.Name}, r.Created, nil
}

// ipRange describes the assignable addresses of a service CIDR: all but
// the network address, and for IPv4 all but the broadcast address.
type ipRange struct {
	prefix netip.Prefix
	first  netip.Addr
	size   uint64
}

func newIPRange(p netip.Prefix) (ipRange, error) {
	p = p.Masked()
	if !p.IsValid() {
		return ipRange{}, fmt.Errorf("service CIDR %v is not valid", p)
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if p.Addr().Is6() && hostBits > 64 {
		return ipRange{}, fmt.Errorf("service CIDR %v is too large: the shortest IPv6 prefix allowed is /64", p)
	}
	// IPv4: 2^hostBits - 2 (network and broadcast); IPv6: 2^hostBits - 1
	// (network), capped to what a uint64 offset holds.
	var size uint64
	switch {
	case hostBits >= 64:
		size = 1<<63 - 1
	case p.Addr().Is4():
		size = 1<<hostBits - 2
		if hostBits < 2 {
			size = 0
		}
	default:
		size = 1<<hostBits - 1
	}
	if size == 0 {
		return ipRange{}, fmt.Errorf("service CIDR %v has no assignable addresses", p)
	}
	return ipRange{prefix: p, first: p.Addr().Next(), size: size}, nil
}

// addr is the address at offset off.
func (r ipRange) addr(off uint64) netip.Addr { return addrAdd(r.first, off) }

// offset is the offset of a, if a is assignable.
func (r ipRange) offset(a netip.Addr) (uint64, bool) {
	a = a.Unmap()
	if !r.prefix.Contains(a) || a.Less(r.first) {
		return 0, false
	}
	off := addrSub(a, r.first)
	return off, off < r.size
}

// addrAdd returns a+n within a's family.
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	sum := lo + n
	if sum < lo {
		hi++
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], sum)
	out := netip.AddrFrom16(b)
	if a.Is4() {
		out = out.Unmap()
	}
	return out
}

// addrSub returns a-b for a >= b whose difference fits 64 bits.
func addrSub(a, b netip.Addr) uint64 {
	x, y := a.As16(), b.As16()
	return binary.BigEndian.Uint64(x[8:]) - binary.BigEndian.Uint64(y[8:])
}

// PortRange is a range of ports: Base .. Base+Size-1.
type PortRange struct {
	Base, Size int
}

// DefaultNodePortRange is kube-apiserver's default, 30000-32767.
var DefaultNodePortRange = PortRange{Base: 30000, Size: 2768}

// DefaultServiceCIDR is kube-apiserver's default service range.
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// ParsePortRange reads "30000-32767" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, found := strings.Cut(s, "-")
	low, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: want FIRST-LAST", s)
	}
	high := low
	if found {
		if high, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: want FIRST-LAST", s)
		}
	}
	if low < 1 || high > 65535 || high < low {
		return PortRange{}, fmt.Errorf("port range %q: ports must be 1-65535 and FIRST <= LAST", s)
	}
	return PortRange{Base: low, Size: high - low + 1}, nil
}

func (p PortRange) String() string {
	return fmt.Sprintf("%d-%d", p.Base, p.Base+p.Size-1)
}

// Contains reports whether port is in the range.
func (p PortRange) Contains(port int) bool { return port >= p.Base && port < p.Base+p.Size }
