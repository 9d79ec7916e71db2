package bridge

import (
	"context"
	"testing"

	"github.com/google/nftables/expr"
)

// hairpinRules counts a network's rules that masquerade DNATed traffic
// back into its own bridge.
func hairpinRules(rs []ruleSpec) int {
	n := 0
	for _, r := range rs {
		masq, dnat := false, false
		for _, e := range r.exprs {
			switch x := e.(type) {
			case *expr.Masq:
				masq = true
			case *expr.Ct:
				dnat = dnat || x.Key == expr.CtKeySTATUS
			}
		}
		if masq && dnat {
			n++
		}
	}
	return n
}

func TestNoHairpinNATRules(t *testing.T) {
	n := testNetwork(false)
	if got := hairpinRules(networkRules(n)); got != 1 {
		t.Fatalf("%d hairpin rules, want 1", got)
	}
	with := len(networkRules(n))
	n.NoHairpinNAT = true
	if got := hairpinRules(networkRules(n)); got != 0 {
		t.Fatalf("%d hairpin rules with NoHairpinNAT, want 0", got)
	}
	if got := len(networkRules(n)); got != with-1 {
		t.Fatalf("%d rules with NoHairpinNAT, want %d (only the hairpin rule goes)", got, with-1)
	}
}

// TestSetNoHairpinNAT turns the option on for an existing network: its
// rules change in place, and a restarted Manager keeps it.
func TestSetNoHairpinNAT(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := e.options()
	m := e.start(opts)
	n, err := m.CreateNetwork(ctx, NetworkConfig{Name: "pods", Subnet: "10.244.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		c := 0
		for _, r := range e.ruleComments() {
			if r == chainPostrouting+" "+netComment(n.ID) {
				c++
			}
		}
		return c
	}
	before := count()
	if err := m.SetNoHairpinNAT(ctx, "pods", true); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != before-1 {
		t.Fatalf("%d postrouting rules of the network, want %d", got, before-1)
	}
	if got, _ := m.Network("pods"); !got.NoHairpinNAT {
		t.Fatal("Network does not report NoHairpinNAT")
	}
	if err := m.SetNoHairpinNAT(ctx, "pods", true); err != nil {
		t.Fatalf("setting it again: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := e.start(opts)
	if got, _ := m2.Network("pods"); !got.NoHairpinNAT {
		t.Fatal("NoHairpinNAT lost across a restart")
	}
	if got := count(); got != before-1 {
		t.Fatalf("after a restart: %d postrouting rules of the network, want %d", got, before-1)
	}
}
