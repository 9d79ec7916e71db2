package bridge

import (
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

func testNetwork(internal bool) *network {
	return &network{
		ID: "n1", Name: "n", Bridge: "br-n", Internal: internal, Subnet: "10.9.0.0/24", Gateway: "10.9.0.1",
		prefix: netip.MustParsePrefix("10.9.0.0/24"), gw: netip.MustParseAddr("10.9.0.1"),
	}
}

func TestRulesCarryTheirOwner(t *testing.T) {
	n := testNetwork(false)
	ep := &endpoint{ContainerID: "c1", ip: netip.MustParseAddr("10.9.0.2"), Ports: []PortMapping{
		{Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80},
		{Proto: "udp", HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53},
	}}
	for _, r := range baseRules() {
		if r.comment != commentBase {
			t.Errorf("base rule in %s has comment %q", r.chain, r.comment)
		}
	}
	for _, r := range networkRules(n) {
		if r.comment != "net=n1" || r.chain == chainPorts {
			t.Errorf("network rule in %s has comment %q", r.chain, r.comment)
		}
	}
	eps := endpointRules(n, ep)
	if len(eps) != 2 {
		t.Fatalf("%d endpoint rules, want one per mapping", len(eps))
	}
	for _, r := range eps {
		if r.comment != "ep=n1/c1" || r.chain != chainPorts {
			t.Errorf("endpoint rule in %s has comment %q", r.chain, r.comment)
		}
	}
	for _, r := range append(append(baseRules(), networkRules(n)...), eps...) {
		if r.comment != commentBase && !chainMayHold(r.chain, []string{r.comment}) {
			t.Errorf("rule %q in %s would not be found for deletion", r.comment, r.chain)
		}
	}
	if len(eps[0].exprs) >= len(eps[1].exprs) {
		t.Error("the 127.0.0.1 mapping does not match on the destination address")
	}
}

func TestInternalNetworkRules(t *testing.T) {
	count := func(rs []ruleSpec, match func(expr.Any) bool) int {
		n := 0
		for _, r := range rs {
			for _, e := range r.exprs {
				if match(e) {
					n++
				}
			}
		}
		return n
	}
	isMasq := func(e expr.Any) bool { _, ok := e.(*expr.Masq); return ok }
	isDrop := func(e expr.Any) bool { v, ok := e.(*expr.Verdict); return ok && v.Kind == expr.VerdictDrop }

	open, closed := networkRules(testNetwork(false)), networkRules(testNetwork(true))
	if count(closed, isMasq) != count(open, isMasq)-1 {
		t.Error("an internal network still masquerades egress")
	}
	if count(closed, isDrop) != count(open, isDrop)+1 {
		t.Error("an internal network does not drop egress")
	}
}

func TestRuleComment(t *testing.T) {
	tests := []struct {
		name string
		ud   []byte
		want string
	}{
		{"comment", userdata.AppendString(nil, userdata.TypeComment, "net=x"), "net=x"},
		{"after another tlv", userdata.AppendString(userdata.AppendUint32(nil, 7, 1), userdata.TypeComment, "ep=a/b"), "ep=a/b"},
		{"none", nil, ""},
		{"truncated", []byte{0, 10, 'a'}, ""},
		{"only a header", []byte{0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleComment(tt.ud); got != tt.want {
				t.Fatalf("ruleComment = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzRuleComment(f *testing.F) {
	f.Add(userdata.AppendString(nil, userdata.TypeComment, "net=x"))
	f.Add([]byte{0, 255})
	f.Fuzz(func(t *testing.T, ud []byte) {
		_ = ruleComment(ud) // must not panic on whatever a rule carries
	})
}
