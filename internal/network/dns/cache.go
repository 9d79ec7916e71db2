package dns

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Longest times answers are kept, as CoreDNS's cache plugin defaults.
const (
	maxPositiveTTL = 3600
	maxNegativeTTL = 1800
)

type cacheKey struct {
	name          string // lower case
	qtype, qclass uint16
	do            bool
}

func keyOf(q dns.Question, do bool) cacheKey {
	return cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do}
}

// answerCache keeps upstream answers for their TTL, at most max of them; the
// least recently used goes first.
type answerCache struct {
	max int
	now func() time.Time

	mu  sync.Mutex
	ll  *list.List // of *cacheEntry, most recent first
	idx map[cacheKey]*list.Element
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg
	expires time.Time
	stored  time.Time
}

func newCache(max int, now func() time.Time) *answerCache {
	return &answerCache{max: max, now: now, ll: list.New(), idx: map[cacheKey]*list.Element{}}
}

// get returns a copy of a live answer with its TTLs counted down.
func (c *answerCache) get(k cacheKey) (*dns.Msg, bool) {
	now := c.now()
	c.mu.Lock()
	el, ok := c.idx[k]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.idx, k)
		c.mu.Unlock()
		return nil, false
	}
	c.ll.MoveToFront(el)
	c.mu.Unlock()
	age := uint32(now.Sub(e.stored) / time.Second)
	m := &dns.Msg{}
	m.Rcode = e.msg.Rcode
	m.AuthenticatedData = e.msg.AuthenticatedData
	m.Answer = aged(e.msg.Answer, age)
	m.Ns = aged(e.msg.Ns, age)
	m.Extra = aged(e.msg.Extra, age)
	return m, true
}

func aged(rrs []dns.RR, age uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := dns.Copy(rr)
		h := cp.Header()
		if h.Ttl > age {
			h.Ttl -= age
		} else {
			h.Ttl = 0
		}
		out[i] = cp
	}
	return out
}

// put keeps m for as long as it may be cached (nothing, for answers that
// may not be).
func (c *answerCache) put(k cacheKey, m *dns.Msg) {
	ttl, ok := cacheTTL(m)
	if !ok || c.max <= 0 {
		return
	}
	now := c.now()
	e := &cacheEntry{key: k, msg: m, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[k]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.idx[k] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.idx, last.Value.(*cacheEntry).key)
	}
}

func (c *answerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// cacheTTL is how long m may be kept: the least TTL of its answers; for a
// denial (NXDOMAIN, or no answer) its SOA's minimum or TTL, whichever is
// less (RFC 2308). Denials without SOA, failures and zero TTLs are not
// kept.
func cacheTTL(m *dns.Msg) (uint32, bool) {
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		ttl := uint32(maxPositiveTTL)
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return ttl, ttl > 0
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl, maxNegativeTTL)
				return ttl, ttl > 0
			}
		}
	}
	return 0, false
}
