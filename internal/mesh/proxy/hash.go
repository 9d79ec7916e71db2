package proxy

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is consistent hashing (LBConsistentHash, Istio's
// consistentHash with a ring hash): the request's header, cookie, source
// IP or query parameter is hashed onto a ring on which every endpoint has
// many points, and the request goes to the first endpoint at or after its
// hash. An endpoint joining or leaving moves only the keys next to its
// own points. A request without the hashed value goes to a random
// endpoint, as Envoy's does.

// Ring sizes (Envoy's ring_hash bounds; Istio's default minimum).
const (
	DefaultMinimumRingSize = 1024
	maxRingSize            = 8 << 20
)

// hashPolicy is a compiled HashPolicy; comparable (part of the cluster's
// settings).
type hashPolicy struct {
	header    string // canonical
	cookie    string
	cookieTTL time.Duration
	path      string
	sourceIP  bool
	query     string
	ringSize  int
}

// hashKey is a request's hash; ok is false when it has none.
type hashKey struct {
	h  uint64
	ok bool
}

// key hashes r per the policy. For a cookie policy with a TTL and a
// request without the cookie, it returns the Set-Cookie value that makes
// the client stick (the cookie value is derived from the client's
// address, as Envoy derives it).
func (hp *hashPolicy) key(r *http.Request) (k hashKey, setCookie string) {
	switch {
	case hp.header != "":
		vs := r.Header[hp.header]
		if len(vs) == 0 {
			return k, ""
		}
		h := uint64(fnvOffset)
		for _, v := range vs {
			h = fnvString(h, v)
		}
		return hashKey{h: mix64(h), ok: true}, ""
	case hp.cookie != "":
		if c, err := r.Cookie(hp.cookie); err == nil {
			return hashKey{h: hashString(c.Value), ok: true}, ""
		}
		if hp.cookieTTL <= 0 {
			return k, ""
		}
		v := strconv.FormatUint(hashString(r.RemoteAddr), 16)
		sc := &http.Cookie{Name: hp.cookie, Value: v, Path: hp.path, MaxAge: int(hp.cookieTTL / time.Second), HttpOnly: true}
		if sc.MaxAge == 0 {
			sc.MaxAge = 1
		}
		return hashKey{h: hashString(v), ok: true}, sc.String()
	case hp.sourceIP:
		ip := remoteIP(r.RemoteAddr)
		if ip == "" {
			return k, ""
		}
		return hashKey{h: hashString(ip), ok: true}, ""
	case hp.query != "":
		if !strings.Contains(r.URL.RawQuery, hp.query) {
			return k, ""
		}
		q, _ := url.ParseQuery(r.URL.RawQuery)
		vs, ok := q[hp.query]
		if !ok || len(vs) == 0 {
			return k, ""
		}
		return hashKey{h: hashString(vs[0]), ok: true}, ""
	}
	return k, ""
}

// hashAddr is the source-IP hash of a connection's remote address (TCP
// clusters).
func hashAddr(addr string) hashKey {
	ip := remoteIP(addr)
	if ip == "" {
		return hashKey{}
	}
	return hashKey{h: hashString(ip), ok: true}
}

// FNV-1a with a final avalanche (murmur3's fmix64): stable across
// processes, so that every sidecar maps a key to the same endpoint.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func hashString(s string) uint64 { return mix64(fnvString(fnvOffset, s)) }

// ring is the hash ring of one endpoint set.
type ring struct {
	hashes []uint64
	eps    []*endpoint // eps[i] owns hashes[i]
}

// newRing places at least size points on the ring, each the hash of
// "address_i" (as Envoy's ring hash). Every endpoint gets ceil(size/n)
// points rounded up to a power of two, so that an endpoint joining or
// leaving seldom changes the others' points: their keys stay where they
// were.
func newRing(eps []*endpoint, size int) *ring {
	if len(eps) == 0 {
		return &ring{}
	}
	per := 1
	for per*len(eps) < size {
		per *= 2
	}
	per = max(1, min(per, maxRingSize/len(eps)))
	type point struct {
		h  uint64
		ep *endpoint
	}
	pts := make([]point, 0, per*len(eps))
	for _, e := range eps {
		b := make([]byte, 0, len(e.addr)+8)
		b = append(b, e.addr...)
		b = append(b, '_')
		base := len(b)
		for i := range per {
			b = strconv.AppendInt(b[:base], int64(i), 10)
			pts = append(pts, point{hashString(string(b)), e})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return strings.Compare(a.ep.addr, b.ep.addr)
	})
	r := &ring{hashes: make([]uint64, len(pts)), eps: make([]*endpoint, len(pts))}
	for i, p := range pts {
		r.hashes[i], r.eps[i] = p.h, p.ep
	}
	return r
}

// pick walks the ring from h to the first endpoint usable and not tried;
// failing that the first usable one; nil if none is usable.
func (r *ring) pick(h uint64, tried []*endpoint, usable func(*endpoint) bool) *endpoint {
	n := len(r.hashes)
	if n == 0 {
		return nil
	}
	i, _ := slices.BinarySearch(r.hashes, h)
	if e := r.eps[i%n]; usable(e) && !contains(tried, e) {
		return e // the usual case, without allocating
	}
	var first *endpoint
	var seen []*endpoint // distinct endpoints passed, to stop once all were
	for k := range n {
		e := r.eps[(i+k)%n]
		if contains(seen, e) {
			continue
		}
		seen = append(seen, e)
		if !usable(e) {
			continue
		}
		if !contains(tried, e) {
			return e
		}
		if first == nil {
			first = e
		}
	}
	return first
}
