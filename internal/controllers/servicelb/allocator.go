package servicelb

import (
	"net/netip"
	"sync"
)

// allocator remembers which Service holds which pool address. It lives in
// memory only: on start the controller rebuilds it from the Services'
// statuses, so the addresses in the API are the record.
type allocator struct {
	pool *Pool

	mu      sync.Mutex
	owner   map[netip.Addr]string // address → Service key
	held    map[string]netip.Addr // Service key → address
	waiting map[string]bool       // Services that found the pool empty
}

func newAllocator(pool *Pool) *allocator {
	return &allocator{pool: pool, owner: map[netip.Addr]string{}, held: map[string]netip.Addr{}, waiting: map[string]bool{}}
}

// claim gives ip to key if the pool has it and nobody else holds it; key
// gives up what it held before. It reports the holder when it is taken.
func (a *allocator) claim(key string, ip netip.Addr) (holder string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.pool.Contains(ip) {
		return "", false
	}
	if o, taken := a.owner[ip]; taken && o != key {
		return o, false
	}
	a.releaseLocked(key)
	a.owner[ip], a.held[key] = key, ip
	delete(a.waiting, key)
	return "", true
}

// next gives key the first free address of the family, or what it holds
// already if that is of the family.
func (a *allocator) next(key string, v4 bool) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.held[key]; ok && ip.Is4() == v4 {
		return ip, true
	}
	ip, ok := a.pool.first(v4, func(ip netip.Addr) bool { _, taken := a.owner[ip]; return !taken })
	if !ok {
		a.waiting[key] = true
		return netip.Addr{}, false
	}
	a.releaseLocked(key)
	a.owner[ip], a.held[key] = key, ip
	delete(a.waiting, key)
	return ip, true
}

// holding is the address key holds.
func (a *allocator) holding(key string) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip, ok := a.held[key]
	return ip, ok
}

// release frees what key holds and forgets it waited; it returns the
// Services waiting for an address when one was freed.
func (a *allocator) release(key string) (waiters []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.waiting, key)
	if !a.releaseLocked(key) {
		return nil
	}
	for k := range a.waiting {
		waiters = append(waiters, k)
	}
	return waiters
}

func (a *allocator) releaseLocked(key string) bool {
	ip, ok := a.held[key]
	if !ok {
		return false
	}
	delete(a.held, key)
	delete(a.owner, ip)
	return true
}

// waiters lists the Services waiting for an address.
func (a *allocator) waiters() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.waiting))
	for k := range a.waiting {
		out = append(out, k)
	}
	return out
}

// wait marks key as waiting for an address (one it asked for, or any).
func (a *allocator) wait(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waiting[key] = true
}
