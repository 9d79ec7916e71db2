package proxy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// socketBuffer bounds a batch and its acknowledgements: the kernel takes
// a batch in one message and acknowledges each of its commands before we
// read any, so a first sync of thousands of Services needs room (memory
// is only used while a batch is in flight).
const socketBuffer = 256 << 20

// kernel writes the table through one netlink socket in the node's
// network namespace.
type kernel struct {
	table *nftables.Table
	nsFD  int
	conn  *nftables.Conn
	setID uint32 // IDs of sets created in a batch (ours, not the library's global counter)
}

func newKernel(table string, nsFD int) *kernel {
	return &kernel{table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, nsFD: nsFD}
}

func (k *kernel) c() (*nftables.Conn, error) {
	if k.conn != nil {
		return k.conn, nil
	}
	c, err := nftables.New(nftables.WithNetNSFd(k.nsFD), nftables.AsLasting(),
		nftables.WithSockOptions(func(c *netlink.Conn) error {
			raw, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			err = raw.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer))
			})
			return errors.Join(err, serr)
		}))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	k.conn = c
	return c, nil
}

// reset drops the socket after a failure: acknowledgements of a failed
// batch may still be queued on it.
func (k *kernel) reset() {
	if k.conn != nil {
		_ = k.conn.CloseLasting()
		k.conn = nil
	}
}

func (k *kernel) close() { k.reset() }

// list returns the chains and sets of the table; none if it is missing.
func (k *kernel) list() (chains, sets []string, err error) {
	c, err := k.c()
	if err != nil {
		return nil, nil, err
	}
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		k.reset()
		return nil, nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	found := false
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == k.table.Name {
			found = true
			chains = append(chains, ch.Name)
		}
	}
	if !found {
		// No chain: the table may be missing, and listing its sets
		// would fail.
		if _, err := c.ListTableOfFamily(k.table.Name, nftables.TableFamilyIPv4); err != nil {
			return nil, nil, nil
		}
	}
	ss, err := c.GetSets(k.table)
	if err != nil {
		k.reset()
		return nil, nil, fmt.Errorf("nftables: list sets: %w", err)
	}
	for _, s := range ss {
		if !s.Anonymous {
			sets = append(sets, s.Name)
		}
	}
	return chains, sets, nil
}

// apply sends the plan as one batch: the kernel takes all of it or none.
func (k *kernel) apply(p *plan) error {
	c, err := k.c()
	if err != nil {
		return err
	}
	b := &batch{k: k, c: c}
	if p.full {
		c.AddTable(k.table)
		for _, s := range fixedSets {
			if err := c.AddSet(b.set(s), nil); err != nil {
				return fmt.Errorf("nftables: set %s: %w", s.name, err)
			}
			c.FlushSet(b.set(s))
		}
		for _, bc := range baseChains() {
			accept := nftables.ChainPolicyAccept
			ch := c.AddChain(&nftables.Chain{Name: bc.name, Table: k.table, Type: bc.typ,
				Hooknum: bc.hook, Priority: &bc.prio, Policy: &accept})
			c.FlushChain(ch)
		}
		for _, fc := range fixedChains(p.cfg) {
			c.FlushChain(c.AddChain(b.chain(fc.name)))
		}
	}
	for _, s := range p.addSets {
		if err := c.AddSet(b.set(setDefFor(s)), nil); err != nil {
			return fmt.Errorf("nftables: set %s: %w", s, err)
		}
	}
	for _, ch := range p.addChains {
		c.AddChain(b.chain(ch.name))
	}
	for _, ch := range p.fillChains {
		c.FlushChain(b.chain(ch.name))
	}
	for _, name := range p.flush {
		c.FlushChain(b.chain(name))
	}
	if p.full {
		for _, bc := range baseChains() {
			b.rules(bc.name, bc.rules)
		}
		for _, fc := range fixedChains(p.cfg) {
			b.rules(fc.name, fc.rules)
		}
	}
	for _, ch := range slices.Concat(p.addChains, p.fillChains) {
		b.rules(ch.name, ch.rules)
	}
	if err := b.elements(p.delElems, true); err != nil {
		return err
	}
	if err := b.elements(p.addElems, false); err != nil {
		return err
	}
	for _, s := range p.delSets {
		c.DelSet(&nftables.Set{Table: k.table, Name: s})
	}
	if err := c.Flush(); err != nil {
		k.reset()
		return fmt.Errorf("nftables: table %s: %w", k.table.Name, err)
	}
	return nil
}

// deleteChains deletes (empty, unreferenced) chains in one batch.
func (k *kernel) deleteChains(names []string) error {
	c, err := k.c()
	if err != nil {
		return err
	}
	for _, n := range names {
		c.DelChain(&nftables.Chain{Name: n, Table: k.table})
	}
	if err := c.Flush(); err != nil {
		k.reset()
		return fmt.Errorf("nftables: delete stale chains: %w", err)
	}
	return nil
}

// deleteTable removes the table and everything in it; a missing table is
// fine.
func (k *kernel) deleteTable() error {
	c, err := k.c()
	if err != nil {
		return err
	}
	c.AddTable(k.table) // so that the delete cannot fail for a missing table
	c.DelTable(k.table)
	if err := c.Flush(); err != nil {
		k.reset()
		return fmt.Errorf("nftables: delete table %s: %w", k.table.Name, err)
	}
	return nil
}

// batch builds one batch on a connection.
type batch struct {
	k *kernel
	c *nftables.Conn
}

func (b *batch) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: b.k.table}
}

func (b *batch) nextSetID() uint32 {
	b.k.setID++
	if b.k.setID == 0 {
		b.k.setID = 1
	}
	return b.k.setID
}

func (b *batch) set(s setDef) *nftables.Set {
	dt := s.key.datatype()
	set := &nftables.Set{
		Table:         b.k.table,
		ID:            b.nextSetID(),
		Name:          s.name,
		KeyType:       dt,
		Concatenation: s.key == keyAddrProtoPort || s.key == keyProtoPort,
		KeyByteOrder:  binaryutil.BigEndian,
		Comment:       s.comment,
	}
	if s.vmap {
		set.IsMap, set.DataType = true, nftables.TypeVerdict
	}
	if s.key == keyIndex {
		set.KeyByteOrder = binaryutil.NativeEndian // numgen's
	}
	if s.dynamic {
		// As nft makes them: the dynset expression gives each entry its
		// timeout; the size is nft's default for dynamic sets.
		set.Dynamic, set.HasTimeout, set.Size = true, true, 65535
	}
	return set
}

func (b *batch) rules(chainName string, rules []rule) {
	ch := b.chain(chainName)
	for _, r := range rules {
		var ud []byte
		if r.comment != "" {
			ud = userdata.AppendString(nil, userdata.TypeComment, r.comment)
		}
		b.c.AddRule(&nftables.Rule{Table: b.k.table, Chain: ch, Exprs: r.exprs(), UserData: ud})
	}
}

// elements adds or deletes elements, one message per set.
func (b *batch) elements(ops []elemOp, del bool) error {
	bySet := map[string][]nftables.SetElement{}
	var order []string
	for _, op := range ops {
		e := nftables.SetElement{Key: op.key.bytes()}
		def := setDefFor(op.key.set)
		if !del && def.vmap {
			e.VerdictData = &expr.Verdict{Kind: op.val.kind, Chain: op.val.chain}
		}
		if _, ok := bySet[op.key.set]; !ok {
			order = append(order, op.key.set)
		}
		bySet[op.key.set] = append(bySet[op.key.set], e)
	}
	for _, name := range order {
		set := b.set(setDefFor(name))
		set.ID = 0 // an existing set, found by name
		var err error
		if del {
			err = b.c.SetDeleteElements(set, bySet[name])
		} else {
			err = b.c.SetAddElements(set, bySet[name])
		}
		if err != nil {
			return fmt.Errorf("nftables: elements of %s: %w", name, err)
		}
	}
	return nil
}
