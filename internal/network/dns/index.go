package dns

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// index maps canonical names to their records. Each owner (a Service,
// "namespace/name") contributes a set of names; replacing one owner's set
// re-merges only the names it touched, so a change costs what the changed
// Service holds, and a lookup is one or two map reads. Names without
// records (empty non-terminals such as <ns>.svc.<zone>, which every
// Service of the namespace contributes) are only counted, so that they
// cost nothing to merge.
type index struct {
	mu      sync.RWMutex
	merged  map[string]*rrset
	byName  map[string]map[string]*rrset // name → owner → contribution
	byOwner map[string]map[string]*rrset // owner → name → contribution
	ents    map[string]int               // name → owners contributing it empty
	serial  atomic.Uint32                // the SOA serial: changes with the data
}

var emptySet = &rrset{}

func newIndex() *index {
	ix := &index{
		merged:  map[string]*rrset{},
		byName:  map[string]map[string]*rrset{},
		byOwner: map[string]map[string]*rrset{},
		ents:    map[string]int{},
	}
	ix.serial.Store(uint32(time.Now().Unix()))
	return ix
}

// lookup returns the records of a canonical name.
func (ix *index) lookup(name string) (*rrset, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if r, ok := ix.merged[name]; ok {
		return r, true
	}
	if ix.ents[name] > 0 {
		return emptySet, true
	}
	return nil, false
}

// set replaces owner's contribution (nil removes it).
func (ix *index) set(owner string, names map[string]*rrset) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.byOwner[owner]
	if len(old) == 0 && len(names) == 0 {
		return
	}
	for name, r := range old {
		if nr, ok := names[name]; ok && nr.empty() == r.empty() {
			continue // replaced below
		}
		if r.empty() {
			ix.unref(name)
			continue
		}
		delete(ix.byName[name], owner)
		ix.remerge(name)
	}
	for name, r := range names {
		or, had := old[name]
		if r.empty() {
			if !had || !or.empty() {
				ix.ents[name]++
			}
			continue
		}
		m := ix.byName[name]
		if m == nil {
			m = map[string]*rrset{}
			ix.byName[name] = m
		}
		m[owner] = r
		ix.remerge(name)
	}
	if len(names) == 0 {
		delete(ix.byOwner, owner)
	} else {
		ix.byOwner[owner] = names
	}
	ix.serial.Add(1)
}

func (ix *index) unref(name string) {
	if ix.ents[name] <= 1 {
		delete(ix.ents, name)
		return
	}
	ix.ents[name]--
}

// owners lists the owners with contributions.
func (ix *index) owners() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]string, 0, len(ix.byOwner))
	for o := range ix.byOwner {
		out = append(out, o)
	}
	return out
}

// remerge recomputes one name from its owners' contributions. Called with
// mu held.
func (ix *index) remerge(name string) {
	contribs := ix.byName[name]
	switch len(contribs) {
	case 0:
		delete(ix.byName, name)
		delete(ix.merged, name)
		return
	case 1:
		for _, r := range contribs {
			ix.merged[name] = r
		}
		return
	}
	owners := make([]string, 0, len(contribs))
	for o := range contribs {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	m := &rrset{}
	for _, o := range owners {
		r := contribs[o]
		for _, a := range r.addrs {
			m.addrs = appendAddr(m.addrs, a)
		}
		m.srv = append(m.srv, r.srv...)
		if m.cname == "" {
			m.cname = r.cname
		}
		for _, p := range r.ptr {
			m.ptr = appendName(m.ptr, p)
		}
	}
	ix.merged[name] = m
}
