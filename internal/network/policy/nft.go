package policy

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// baseChain is one of the table's fixed entry points: accept what conntrack
// knows, then dispatch on the pod address through a verdict map.
type baseChain struct {
	name     string
	hook     *nftables.ChainHook
	hookName string
	prio     *nftables.ChainPriority
	prioName string
	addr     string // "saddr" (egress) or "daddr" (ingress)
	vmap     string
}

// Egress and ingress are separate base chains so that an egress accept
// cannot skip the ingress check; both run after NAT (filter priority).
var baseChains = []baseChain{
	{chainForwardEgress, nftables.ChainHookForward, "forward", nftables.ChainPriorityFilter, "filter", "saddr", mapEgress},
	{chainForwardIngress, nftables.ChainHookForward, "forward", nftables.ChainPriorityRef(*nftables.ChainPriorityFilter + 10), "filter + 10", "daddr", mapIngress},
	{chainInputEgress, nftables.ChainHookInput, "input", nftables.ChainPriorityFilter, "filter", "saddr", mapEgress},
}

// kernel programs Rulesets into one nftables table of family ip.
type kernel struct {
	table *nftables.Table
	nsFD  int // the network namespace of the table
	log   *slog.Logger
	cur   *Ruleset // what the table holds; nil: unknown, replace it whole
}

func newKernel(table string, nsFD int, log *slog.Logger) *kernel {
	return &kernel{table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, nsFD: nsFD, log: log}
}

func (k *kernel) conn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(k.nsFD), nftables.WithSockOptions(bigBuffers))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// socketBuffer bounds the netlink socket's buffers. A transaction is one
// sendmsg (the kernel reads a batch from one message), and the kernel
// acknowledges every message of it at once; the defaults (about 200 KiB)
// hold a few hundred policies. Like nft, raise them past net.core.*mem_max
// (needs CAP_NET_ADMIN, which nftables needs anyway). A limit, not an
// allocation.
const socketBuffer = 64 << 20

func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, socketBuffer); e != nil {
				serr = fmt.Errorf("netlink socket buffer: %w", e)
			}
		}
	})
	return cmp.Or(err, serr)
}

// apply makes the table hold rs: the difference from what it holds in one
// atomic batch, or the whole table when that is unknown or the difference
// failed to apply.
func (k *kernel) apply(rs *Ruleset) (incremental bool, err error) {
	if k.cur != nil {
		err := k.update(k.cur, rs)
		if err == nil {
			k.cur = rs
			return true, nil
		}
		// The table changed behind our back, or a bug: start over.
		k.log.Warn("incremental update failed, replacing the table", "err", err)
		k.cur = nil
	}
	if err := k.replace(rs); err != nil {
		return false, err
	}
	k.cur = rs
	return false, nil
}

// replace swaps the whole table for one holding rs, atomically: packets
// see the old rules or the new ones, never none.
func (k *kernel) replace(rs *Ruleset) error {
	c, err := k.conn()
	if err != nil {
		return err
	}
	c.AddTable(k.table) // so that the delete cannot fail
	c.DelTable(k.table)
	c.AddTable(k.table)
	b := &batch{c: c, table: k.table}
	b.addSkeleton()
	b.update(newRuleset(), rs)
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables: replace table %s: %w", k.table.Name, err)
	}
	return nil
}

func (k *kernel) update(old, rs *Ruleset) error {
	c, err := k.conn()
	if err != nil {
		return err
	}
	b := &batch{c: c, table: k.table}
	b.update(old, rs)
	if err := b.flush(); err != nil {
		return fmt.Errorf("nftables: update table %s: %w", k.table.Name, err)
	}
	return nil
}

// remove deletes the table; a missing table is no error.
func (k *kernel) remove() error {
	k.cur = nil
	c, err := k.conn()
	if err != nil {
		return err
	}
	c.AddTable(k.table) // so that the delete cannot fail
	c.DelTable(k.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", k.table.Name, err)
	}
	return nil
}

// batch queues the messages of one transaction.
type batch struct {
	c     *nftables.Conn
	table *nftables.Table
	err   error
}

func (b *batch) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

func (b *batch) flush() error {
	if b.err != nil {
		return b.err
	}
	return b.c.Flush()
}

func (b *batch) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: b.table}
}

func (b *batch) vmap(name string) *nftables.Set {
	return &nftables.Set{Table: b.table, Name: name, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
}

// addSkeleton adds the dispatch maps and the base chains.
func (b *batch) addSkeleton() {
	b.fail(b.c.AddSet(b.vmap(mapIngress), nil))
	b.fail(b.c.AddSet(b.vmap(mapEgress), nil))
	accept := nftables.ChainPolicyAccept
	for _, bc := range baseChains {
		ch := b.c.AddChain(&nftables.Chain{Name: bc.name, Table: b.table, Type: nftables.ChainTypeFilter,
			Hooknum: bc.hook, Priority: bc.prio, Policy: &accept})
		offset := uint32(16)
		if bc.addr == "saddr" {
			offset = 12
		}
		b.c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: cat(
			ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			verdict(expr.VerdictAccept, ""),
		)})
		b.c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: []expr.Any{
			ipAddr(offset),
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: bc.vmap},
		}})
	}
}

// update queues what turns old into rs. The order keeps every reference
// valid inside the transaction: sets and chains are created before rules
// use them, and rules and map entries are gone before what they point at
// is deleted.
func (b *batch) update(old, rs *Ruleset) {
	// New sets, and elements of changed ones.
	for _, name := range slices.Sorted(maps.Keys(rs.Sets)) {
		s := rs.Sets[name]
		o, ok := old.Sets[name]
		if !ok {
			b.fail(b.c.AddSet(nftSet(b.table, s), nil))
			b.addElements(nftSet(b.table, s), setElements(s))
			continue
		}
		if o.Interval != s.Interval {
			b.fail(fmt.Errorf("set %s changed its kind", name)) // names include the kind: cannot happen
			continue
		}
		add, del := diffSet(o, s)
		b.delElements(nftSet(b.table, s), del)
		b.addElements(nftSet(b.table, s), add)
	}
	// New chains, then the rules of new and changed ones.
	names := slices.Sorted(maps.Keys(rs.Chains))
	for _, name := range names {
		if _, ok := old.Chains[name]; !ok {
			b.c.AddChain(b.chain(name))
		}
	}
	for _, name := range names {
		c := rs.Chains[name]
		o, ok := old.Chains[name]
		if ok && slices.Equal(o.Rules, c.Rules) {
			continue
		}
		if ok {
			b.c.FlushChain(b.chain(name))
		}
		for _, r := range c.Rules {
			b.c.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain(name), Exprs: ruleExprs(r),
				UserData: comment(r.Comment)})
		}
	}
	// Dispatch entries.
	b.updateMap(mapIngress, old.Ingress, rs.Ingress)
	b.updateMap(mapEgress, old.Egress, rs.Egress)
	// Chains and sets nothing uses any more: empty the chains first, as
	// they may jump to each other.
	var gone []string
	for _, name := range slices.Sorted(maps.Keys(old.Chains)) {
		if _, ok := rs.Chains[name]; !ok {
			gone = append(gone, name)
			b.c.FlushChain(b.chain(name))
		}
	}
	for _, name := range gone {
		b.c.DelChain(b.chain(name))
	}
	for _, name := range slices.Sorted(maps.Keys(old.Sets)) {
		if _, ok := rs.Sets[name]; !ok {
			b.c.DelSet(&nftables.Set{Table: b.table, Name: name})
		}
	}
}

func (b *batch) updateMap(name string, old, cur map[netip.Addr]string) {
	var add, del []nftables.SetElement
	for a, chain := range old {
		if cur[a] != chain {
			del = append(del, nftables.SetElement{Key: addrBytes(a)})
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(cur), netip.Addr.Compare) {
		if chain := cur[a]; old[a] != chain {
			add = append(add, nftables.SetElement{Key: addrBytes(a),
				VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}})
		}
	}
	b.delElements(b.vmap(name), del)
	b.addElements(b.vmap(name), add)
}

// elementChunk bounds the elements per message: a message's element list
// is one netlink attribute, whose length field has 16 bits.
const elementChunk = 256

func (b *batch) addElements(s *nftables.Set, elems []nftables.SetElement) {
	for c := range slices.Chunk(elems, elementChunk) {
		b.fail(b.c.SetAddElements(s, c))
	}
}

func (b *batch) delElements(s *nftables.Set, elems []nftables.SetElement) {
	for c := range slices.Chunk(elems, elementChunk) {
		b.fail(b.c.SetDeleteElements(s, c))
	}
}

func nftSet(t *nftables.Table, s *Set) *nftables.Set {
	return &nftables.Set{Table: t, Name: s.Name, KeyType: nftables.TypeIPAddr, Interval: s.Interval,
		KeyByteOrder: binaryutil.BigEndian, Comment: s.Comment}
}

// setElements are s's elements as the kernel wants them; a range is a
// start element and an end element one past it (none at the top of the
// address space).
func setElements(s *Set) []nftables.SetElement {
	var out []nftables.SetElement
	for _, a := range s.Addrs {
		out = append(out, nftables.SetElement{Key: addrBytes(a)})
	}
	for _, r := range s.Ranges {
		out = append(out, rangeElements(r)...)
	}
	return out
}

func rangeElements(r Range) []nftables.SetElement {
	out := []nftables.SetElement{{Key: addrBytes(r.From)}}
	if end := addrUint(r.To); end != ^uint32(0) {
		out = append(out, nftables.SetElement{Key: addrBytes(uintAddr(end + 1)), IntervalEnd: true})
	}
	return out
}

// diffSet returns the elements to add to and delete from o to make s.
func diffSet(o, s *Set) (add, del []nftables.SetElement) {
	if s.Interval {
		for _, r := range s.Ranges {
			if !slices.Contains(o.Ranges, r) {
				add = append(add, rangeElements(r)...)
			}
		}
		for _, r := range o.Ranges {
			if !slices.Contains(s.Ranges, r) {
				del = append(del, rangeElements(r)...)
			}
		}
		return add, del
	}
	// Both sorted: merge.
	i, j := 0, 0
	for i < len(o.Addrs) || j < len(s.Addrs) {
		switch {
		case j == len(s.Addrs) || i < len(o.Addrs) && o.Addrs[i].Less(s.Addrs[j]):
			del = append(del, nftables.SetElement{Key: addrBytes(o.Addrs[i])})
			i++
		case i == len(o.Addrs) || s.Addrs[j].Less(o.Addrs[i]):
			add = append(add, nftables.SetElement{Key: addrBytes(s.Addrs[j])})
			j++
		default:
			i++
			j++
		}
	}
	return add, del
}

// ruleExprs compiles a Rule.
func ruleExprs(r Rule) []expr.Any {
	var out []expr.Any
	if r.Saddr != "" {
		out = append(out, ipAddr(12), &expr.Lookup{SourceRegister: 1, SetName: r.Saddr})
	}
	if r.Daddr != "" {
		out = append(out, ipAddr(16), &expr.Lookup{SourceRegister: 1, SetName: r.Daddr})
	}
	if r.Proto != 0 {
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.Proto}},
		)
		if r.PortFrom != 0 {
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
			if r.PortTo == r.PortFrom {
				out = append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.PortFrom)})
			} else {
				out = append(out, &expr.Range{Op: expr.CmpOpEq, Register: 1,
					FromData: binaryutil.BigEndian.PutUint16(r.PortFrom), ToData: binaryutil.BigEndian.PutUint16(r.PortTo)})
			}
		}
	}
	switch r.Verdict.Kind {
	case Accept:
		out = append(out, verdict(expr.VerdictAccept, "")...)
	case Drop:
		out = append(out, verdict(expr.VerdictDrop, "")...)
	case Jump:
		out = append(out, verdict(expr.VerdictJump, r.Verdict.Chain)...)
	case Goto:
		out = append(out, verdict(expr.VerdictGoto, r.Verdict.Chain)...)
	}
	return out
}

func comment(s string) []byte {
	if s == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, s)
}

// Expression builders, register 1.

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ipAddr loads the IPv4 source (offset 12) or destination (16) address.
func ipAddr(offset uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
}

func addrBytes(a netip.Addr) []byte {
	b := a.As4()
	return b[:]
}

// ctState matches when any of bits is set in the conntrack state.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}
