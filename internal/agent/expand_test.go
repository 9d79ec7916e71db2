package agent

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b", "EMPTY": "", "DOLLAR": "$"}
	cases := []struct{ name, in, want string }{
		{"plain", "hello", "hello"},
		{"one", "$(A)", "a"},
		{"inside text", "x-$(A)-$(B)-y", "x-a-b-y"},
		{"undefined stays", "$(NOPE)", "$(NOPE)"},
		{"empty value", "[$(EMPTY)]", "[]"},
		{"escaped", "$$(A)", "$(A)"},
		{"escaped dollar then ref", "$$$(A)", "$a"},
		{"double escape", "$$$$", "$$"},
		{"unterminated", "$(A", "$(A"},
		{"unterminated then ref", "$(A $(B)", "$(A $(B)"},
		{"dollar other", "$A and $1", "$A and $1"},
		{"trailing dollar", "cost$", "cost$"},
		{"empty name", "$()", "$()"},
		{"value not re-expanded", "$(DOLLAR)(A)", "$(A)"},
		{"shell syntax untouched", "${A} $A", "${A} $A"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := expand(c.in, lookupIn(vars)); got != c.want {
				t.Errorf("expand(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
