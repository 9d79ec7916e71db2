package proxy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// state is the table as the proxy last wrote it and what each Service
// contributed to it. Only the sync loop touches it.
type state struct {
	cfg      *config
	services map[types.NamespacedName]*serviceRules
	// claims: which Services want an element, with which verdict. Two
	// Services may claim one key (an external IP and port, say); the
	// first by namespace/name wins, as the kernel holds only one.
	// (Sorted; the verdicts are in the Services' elems.)
	claims map[elemKey][]types.NamespacedName
	chains map[string]uint64 // Service chains in the kernel: name → sum of its rules
	sets   map[string]bool   // affinity sets in the kernel
	elems  elems             // elements in the kernel
	// stale chains were flushed and are deleted once nothing can still
	// refer to them (kernels before 6.2 release a map element's reference
	// to a chain a little after the element goes).
	stale map[string]time.Time
}

func newState(cfg *config) *state {
	return &state{
		cfg:      cfg,
		services: map[types.NamespacedName]*serviceRules{},
		claims:   map[elemKey][]types.NamespacedName{},
		chains:   map[string]uint64{},
		sets:     map[string]bool{},
		elems:    elems{},
		stale:    map[string]time.Time{},
	}
}

// elemOp is an element to add (with its verdict in maps) or delete.
type elemOp struct {
	key elemKey
	val verdict
}

// plan is one batch of changes to the table, and what the state becomes
// once the kernel took it.
type plan struct {
	// full also (re)creates the table, its fixed sets and chains (flushed
	// and refilled) and refills the fixed sets from scratch.
	full       bool
	cfg        *config
	addSets    []string // affinity sets to create
	addChains  []*chain // chains to create, with their rules
	fillChains []*chain // existing chains to flush and refill
	flush      []string // chains to flush; they become stale
	delElems   []elemOp
	addElems   []elemOp
	delSets    []string

	now      time.Time
	next     *state                                       // full: the new state
	services map[types.NamespacedName]*serviceRules       // update: nil for gone
	claims   map[elemKey]map[types.NamespacedName]verdict // update: empty for none
	contents map[string]uint64                            // sums of addChains and fillChains
}

// empty reports whether the plan changes nothing in the kernel.
func (p *plan) empty() bool {
	return !p.full && len(p.addSets)+len(p.addChains)+len(p.fillChains)+len(p.flush)+
		len(p.delElems)+len(p.addElems)+len(p.delSets) == 0
}

// String lists the plan's operations in nft-like lines (for tests and
// debug logs).
func (p *plan) String() string {
	var b strings.Builder
	if p.full {
		fmt.Fprintf(&b, "full sync of table ip %s\n", p.cfg.table)
	}
	for _, s := range p.addSets {
		fmt.Fprintf(&b, "add set %s\n", s)
	}
	for _, c := range p.addChains {
		fmt.Fprintf(&b, "add chain %s\n", c.name)
	}
	for _, c := range p.fillChains {
		fmt.Fprintf(&b, "flush chain %s\n", c.name)
	}
	for _, c := range p.flush {
		fmt.Fprintf(&b, "flush chain %s (stale)\n", c)
	}
	for _, c := range slices.Concat(p.addChains, p.fillChains) {
		for _, r := range c.rules {
			fmt.Fprintf(&b, "add rule %s %s\n", c.name, r)
		}
	}
	for _, e := range p.delElems {
		fmt.Fprintf(&b, "delete element %s { %s }\n", e.key.set, e.key)
	}
	for _, e := range p.addElems {
		if setDefFor(e.key.set).vmap {
			fmt.Fprintf(&b, "add element %s { %s : %s }\n", e.key.set, e.key, e.val.nft())
		} else {
			fmt.Fprintf(&b, "add element %s { %s }\n", e.key.set, e.key)
		}
	}
	for _, s := range p.delSets {
		fmt.Fprintf(&b, "delete set %s\n", s)
	}
	return b.String()
}

// update plans the change of some Services' rules (nil: the Service has
// none now) from what the state holds: only their chains, sets and
// elements are touched. The state is not changed; commit does that.
func (s *state) update(changes map[types.NamespacedName]*serviceRules, now time.Time) *plan {
	p := &plan{cfg: s.cfg, now: now, services: changes,
		claims: map[elemKey]map[types.NamespacedName]verdict{}, contents: map[string]uint64{}}
	newChains := map[string]*chain{}
	oldChains := map[string]bool{}
	newSets, oldSets := map[string]bool{}, map[string]bool{}
	claimsOf := func(k elemKey) map[types.NamespacedName]verdict {
		c, ok := p.claims[k]
		if !ok {
			c = map[types.NamespacedName]verdict{}
			for _, svc := range s.claims[k] {
				c[svc] = s.services[svc].elems[k]
			}
			p.claims[k] = c
		}
		return c
	}
	for _, key := range sortedKeys(changes) {
		nr, or := changes[key], s.services[key]
		if or != nil {
			for _, c := range or.chains {
				oldChains[c.name] = true
			}
			for _, set := range or.sets {
				oldSets[set] = true
			}
			for k := range or.elems {
				delete(claimsOf(k), key)
			}
		}
		if nr != nil {
			for _, c := range nr.chains {
				newChains[c.name] = c
			}
			for _, set := range nr.sets {
				newSets[set] = true
			}
			for k, v := range nr.elems {
				claimsOf(k)[key] = v
			}
		}
	}

	for _, name := range slices.Sorted(maps.Keys(newSets)) {
		if !s.sets[name] {
			p.addSets = append(p.addSets, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(newChains)) {
		c := newChains[name]
		content := c.sum()
		cur, ok := s.chains[name]
		_, isStale := s.stale[name]
		switch {
		case ok && cur == content:
			continue
		case ok || isStale:
			p.fillChains = append(p.fillChains, c)
		default:
			p.addChains = append(p.addChains, c)
		}
		p.contents[name] = content
	}
	for _, name := range slices.Sorted(maps.Keys(oldChains)) {
		if _, ok := s.chains[name]; ok && newChains[name] == nil {
			p.flush = append(p.flush, name)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(p.claims), compareElemKeys) {
		cur, had := s.elems[k]
		want, has := winner(p.claims[k])
		switch {
		case had && has && cur == want:
		case had && has:
			p.delElems = append(p.delElems, elemOp{key: k})
			p.addElems = append(p.addElems, elemOp{k, want})
		case had:
			p.delElems = append(p.delElems, elemOp{key: k})
		case has:
			p.addElems = append(p.addElems, elemOp{k, want})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(oldSets)) {
		if !newSets[name] && s.sets[name] {
			p.delSets = append(p.delSets, name)
		}
	}
	return p
}

// commit makes the state what the plan says the kernel now holds.
func (s *state) commit(p *plan) {
	if p.full {
		*s = *p.next
		for k, sr := range s.services {
			s.services[k] = sr.skeleton()
		}
		return
	}
	for k, sr := range p.services {
		if sr == nil {
			delete(s.services, k)
		} else {
			s.services[k] = sr.skeleton()
		}
	}
	for k, c := range p.claims {
		if len(c) == 0 {
			delete(s.claims, k)
		} else {
			s.claims[k] = slices.SortedFunc(maps.Keys(c), compareNames)
		}
	}
	for _, set := range p.addSets {
		s.sets[set] = true
	}
	for _, set := range p.delSets {
		delete(s.sets, set)
	}
	for name, content := range p.contents {
		s.chains[name] = content
		delete(s.stale, name)
	}
	for _, name := range p.flush {
		delete(s.chains, name)
		s.stale[name] = p.now
	}
	for _, e := range p.delElems {
		delete(s.elems, e.key)
	}
	for _, e := range p.addElems {
		s.elems[e.key] = e.val
	}
}

// full plans a rewrite of the whole table from the Services' rules, given
// the Service chains and affinity sets the kernel has now: everything is
// refilled in one batch, and chains and sets no Service has any more go.
func full(cfg *config, services map[types.NamespacedName]*serviceRules, kernelChains, kernelSets []string, now time.Time) *plan {
	next := newState(cfg)
	p := &plan{full: true, cfg: cfg, next: next, now: now}
	inKernel := map[string]bool{}
	for _, c := range kernelChains {
		inKernel[c] = true
	}
	for _, key := range sortedKeys(services) {
		sr := services[key]
		if sr == nil {
			continue
		}
		next.services[key] = sr
		for _, c := range sr.chains {
			if inKernel[c.name] {
				p.fillChains = append(p.fillChains, c)
			} else {
				p.addChains = append(p.addChains, c)
			}
			next.chains[c.name] = c.sum()
		}
		for _, set := range sr.sets {
			next.sets[set] = true
		}
		for k := range sr.elems {
			next.claims[k] = append(next.claims[k], key) // keys come sorted
		}
	}
	for _, c := range kernelChains {
		if _, ok := next.chains[c]; !ok && isServiceObject(c) {
			p.flush = append(p.flush, c)
			next.stale[c] = now
		}
	}
	inKernelSets := map[string]bool{}
	for _, s := range kernelSets {
		inKernelSets[s] = true
		if !next.sets[s] && isServiceObject(s) {
			p.delSets = append(p.delSets, s)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(next.sets)) {
		if !inKernelSets[s] {
			p.addSets = append(p.addSets, s)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(next.claims), compareElemKeys) {
		v := next.services[next.claims[k][0]].elems[k]
		next.elems[k] = v
		p.addElems = append(p.addElems, elemOp{k, v})
	}
	slices.Sort(p.flush)
	slices.Sort(p.delSets)
	return p
}

// winner is the verdict of the first Service (by namespace/name) claiming
// an element.
func winner(c map[types.NamespacedName]verdict) (verdict, bool) {
	if len(c) == 0 {
		return verdict{}, false
	}
	first := slices.MinFunc(slices.Collect(maps.Keys(c)), compareNames)
	return c[first], true
}

// dueStale returns the stale chains flushed before cutoff.
func (s *state) dueStale(cutoff time.Time) []string {
	var out []string
	for name, t := range s.stale {
		if t.Before(cutoff) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func compareNames(a, b types.NamespacedName) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func sortedKeys[V any](m map[types.NamespacedName]V) []types.NamespacedName {
	return slices.SortedFunc(maps.Keys(m), compareNames)
}
