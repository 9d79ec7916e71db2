package proxy

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"k8s.io/apimachinery/pkg/types"
)

// chain is a regular chain and its rules.
type chain struct {
	name  string
	rules []rule
}

// sum is a hash of the chain's rules as text: chains with the same sum
// compile to the same rules.
func (c *chain) sum() uint64 {
	var h maphash.Hash
	h.SetSeed(contentSeed)
	for _, r := range c.rules {
		h.WriteString(r.String())
		h.WriteByte('\n')
	}
	return h.Sum64()
}

var contentSeed = maphash.MakeSeed()

// baseChain is a chain on a netfilter hook (policy accept).
type baseChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	hookName string
	prio     nftables.ChainPriority
	prioName string
	rules    []rule
}

// keyLayout says which fields an element key of a set or map has.
type keyLayout uint8

const (
	keyAddr          keyLayout = iota // ipv4_addr
	keyAddrProtoPort                  // ipv4_addr . inet_proto . inet_service
	keyProtoPort                      // inet_proto . inet_service
	// keyIndex is numgen's number (host byte order), typed "mark" so that
	// nft lists the map readably (it has no plain host-order integer).
	keyIndex
)

func (k keyLayout) datatype() nftables.SetDatatype {
	switch k {
	case keyIndex:
		return nftables.TypeMark
	case keyAddrProtoPort:
		return nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	case keyProtoPort:
		return nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	}
	return nftables.TypeIPAddr
}

// setDef is a named set or verdict map of the table.
type setDef struct {
	name    string
	key     keyLayout
	vmap    bool
	dynamic bool // an affinity set: flags dynamic,timeout; filled by rules
	comment string
}

// setDefFor is the definition of a set or map of the table by its name.
func setDefFor(name string) setDef {
	for _, s := range fixedSets {
		if s.name == name {
			return s
		}
	}
	if isSpreadMap(name) {
		return setDef{name: name, key: keyIndex, vmap: true}
	}
	return setDef{name: name, key: keyAddr, dynamic: true} // affinity
}

func (s setDef) nftType() string {
	t := s.key.datatype().Name
	if s.vmap {
		t += " : verdict"
	}
	return t
}

// elemKey is one element of a set or map of the table.
type elemKey struct {
	set   string
	addr  netip.Addr // not in the nodeport maps
	proto uint8      // not in cluster-ips
	port  uint16
	index uint32 // only (and always) in spread maps
}

func (k elemKey) String() string {
	switch {
	case isSpreadMap(k.set):
		return fmt.Sprint(k.index)
	case k.proto == 0:
		return k.addr.String()
	case !k.addr.IsValid():
		return fmt.Sprintf("%s . %d", protoName(k.proto), k.port)
	}
	return fmt.Sprintf("%s . %s . %d", k.addr, protoName(k.proto), k.port)
}

// bytes encodes the key as the kernel stores it: concatenated fields each
// padded to four bytes, address and port in network byte order.
func (k elemKey) bytes() []byte {
	if isSpreadMap(k.set) {
		return binaryutil.NativeEndian.PutUint32(k.index)
	}
	var b []byte
	if k.addr.IsValid() {
		a := k.addr.As4()
		b = append(b, a[:]...)
	}
	if k.proto != 0 {
		b = append(b, k.proto, 0, 0, 0)
		b = append(b, binaryutil.BigEndian.PutUint16(k.port)...)
		b = append(b, 0, 0)
	}
	return b
}

func compareElemKeys(a, b elemKey) int {
	return cmp.Or(
		strings.Compare(a.set, b.set),
		a.addr.Compare(b.addr),
		cmp.Compare(a.proto, b.proto),
		cmp.Compare(a.port, b.port),
		cmp.Compare(a.index, b.index),
	)
}

// elems are set and map elements; the verdict is unused in plain sets.
type elems map[elemKey]verdict

// tableText renders a table in nft's syntax: the definitions of sets, then
// base chains, then regular chains, each sorted by name as given.
type tableText struct {
	name   string
	sets   []setDef
	elems  elems
	bases  []baseChain
	chains []*chain
}

func (t *tableText) write(w io.Writer) {
	fmt.Fprintf(w, "table ip %s {\n", t.name)
	bySet := map[string][]elemKey{}
	for k := range t.elems {
		bySet[k.set] = append(bySet[k.set], k)
	}
	first := true
	sep := func() {
		if !first {
			fmt.Fprintln(w)
		}
		first = false
	}
	for _, s := range t.sets {
		sep()
		kind := "set"
		if s.vmap {
			kind = "map"
		}
		fmt.Fprintf(w, "\t%s %s {\n\t\ttype %s\n", kind, s.name, s.nftType())
		if s.dynamic {
			fmt.Fprintf(w, "\t\tflags dynamic,timeout\n")
		}
		if s.comment != "" {
			fmt.Fprintf(w, "\t\tcomment %q\n", s.comment)
		}
		keys := bySet[s.name]
		slices.SortFunc(keys, compareElemKeys)
		if len(keys) > 0 {
			fmt.Fprintf(w, "\t\telements = {\n")
			for _, k := range keys {
				if s.vmap {
					fmt.Fprintf(w, "\t\t\t%s : %s,\n", k, t.elems[k].nft())
				} else {
					fmt.Fprintf(w, "\t\t\t%s,\n", k)
				}
			}
			fmt.Fprintf(w, "\t\t}\n")
		}
		fmt.Fprintf(w, "\t}\n")
	}
	for _, c := range t.bases {
		sep()
		fmt.Fprintf(w, "\tchain %s {\n\t\ttype %s hook %s priority %s; policy accept;\n", c.name, c.typ, c.hookName, c.prioName)
		for _, r := range c.rules {
			fmt.Fprintf(w, "\t\t%s\n", r)
		}
		fmt.Fprintf(w, "\t}\n")
	}
	for _, c := range t.chains {
		sep()
		fmt.Fprintf(w, "\tchain %s {\n", c.name)
		for _, r := range c.rules {
			fmt.Fprintf(w, "\t\t%s\n", r)
		}
		fmt.Fprintf(w, "\t}\n")
	}
	fmt.Fprintf(w, "}\n")
}

// render writes the table the Services' rules make, in nft's syntax; with
// fixed, the fixed sets' definitions and the base and fixed chains too
// (else only the Services' elements, sets and chains).
func render(w io.Writer, cfg *config, services map[types.NamespacedName]*serviceRules, fixed bool) {
	st := full(cfg, services, nil, nil, time.Time{}).next
	t := &tableText{name: cfg.table, elems: st.elems}
	used := map[string]bool{}
	for k := range st.elems {
		used[k.set] = true
	}
	for _, s := range fixedSets {
		if fixed || used[s.name] {
			t.sets = append(t.sets, s)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(st.sets)) {
		t.sets = append(t.sets, setDefFor(s))
	}
	if fixed {
		t.bases = baseChains()
		t.chains = fixedChains(cfg)
	}
	for _, key := range sortedKeys(st.services) {
		t.chains = append(t.chains, st.services[key].chains...)
	}
	t.write(w)
}
