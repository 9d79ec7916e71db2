package capture

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Install makes the pod's network namespace (netnsPath, a namespace file
// such as /proc/<pid>/ns/net or a bind mount of one) hold exactly the
// capture of spec: the table is replaced in one atomic batch, so
// installing again is harmless and traffic never sees a half table.
func Install(netnsPath string, spec Spec) error {
	return withConn(netnsPath, func(c *nftables.Conn) error {
		t := table()
		c.AddTable(t) // so that the delete cannot fail
		c.DelTable(t)
		c.AddTable(t)
		addRuleset(c, t, Rules(spec))
		if err := c.Flush(); err != nil {
			return fmt.Errorf("nftables: install table %s: %w", TableName, err)
		}
		return nil
	})
}

// Remove deletes the table from the namespace; a namespace without it,
// or one that is gone, is not an error.
func Remove(netnsPath string) error {
	err := withConn(netnsPath, func(c *nftables.Conn) error {
		t := table()
		c.AddTable(t)
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("nftables: delete table %s: %w", TableName, err)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Installed reports whether the namespace holds the table.
func Installed(netnsPath string) (bool, error) {
	found := false
	err := withConn(netnsPath, func(c *nftables.Conn) error {
		_, err := c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		found = err == nil
		return err
	})
	return found, err
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
}

func withConn(netnsPath string, fn func(c *nftables.Conn) error) error {
	f, err := os.Open(netnsPath)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return fn(c)
}

// addRuleset adds rs's chains and rules to the batch.
func addRuleset(c *nftables.Conn, t *nftables.Table, rs Ruleset) {
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: t}
		switch ch.Hook {
		case "prerouting":
			nc.Type, nc.Hooknum, nc.Priority = nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest
		case "output":
			nc.Type, nc.Hooknum, nc.Priority = nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[ch.Name], Exprs: ruleExprs(r)})
		}
	}
}

// ruleExprs compiles a rule, register 1 throughout.
func ruleExprs(r Rule) []expr.Any {
	var out []expr.Any
	cmp := func(not bool, data []byte) expr.Any {
		op := expr.CmpOpEq
		if not {
			op = expr.CmpOpNeq
		}
		return &expr.Cmp{Op: op, Register: 1, Data: data}
	}
	if r.TCPOnly {
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(false, []byte{unix.IPPROTO_TCP}))
	}
	if r.OIFLo != nil {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, "lo")
		out = append(out, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmp(!*r.OIFLo, name))
	}
	for _, a := range []struct {
		addr   *Addr
		offset uint32
	}{{r.SAddr, 12}, {r.DAddr, 16}} {
		if a.addr == nil {
			continue
		}
		p := a.addr.Prefix.Masked()
		nw := p.Addr().As4()
		out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: a.offset, Len: 4})
		if p.Bits() < 32 {
			mask := binaryutil.BigEndian.PutUint32(^uint32(0) << (32 - p.Bits()))
			out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
		}
		out = append(out, cmp(a.addr.Not, nw[:]))
	}
	if r.DPort != 0 {
		out = append(out,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			cmp(false, binaryutil.BigEndian.PutUint16(r.DPort)))
	}
	if r.SKUID != nil {
		out = append(out, &expr.Meta{Key: expr.MetaKeySKUID, Register: 1}, cmp(r.SKUID.Not, binaryutil.NativeEndian.PutUint32(r.SKUID.ID)))
	}
	if r.SKGID != nil {
		out = append(out, &expr.Meta{Key: expr.MetaKeySKGID, Register: 1}, cmp(r.SKGID.Not, binaryutil.NativeEndian.PutUint32(r.SKGID.ID)))
	}
	switch r.Verdict {
	case "jump":
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Target})
	case "redirect":
		out = append(out,
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.ToPort)},
			&expr.Redir{RegisterProtoMin: 1})
	default:
		out = append(out, &expr.Verdict{Kind: expr.VerdictReturn})
	}
	return out
}
