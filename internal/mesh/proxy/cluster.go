package proxy

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// clusterSettings are a cluster's knobs; a cluster whose settings are
// unchanged by an Update keeps its state (pools, counters).
type clusterSettings struct {
	lb             LBPolicy
	protocol       Protocol
	connectTimeout time.Duration
	maxIdle        int
	idleTimeout    time.Duration
	tcp            bool
	// The mesh's traffic policy (comparable values; see clustercfg.go).
	hash    hashPolicy
	pool    ConnectionPool
	outlier OutlierDetection
	tlsKey  string
}

// cluster is the live state of a Cluster.
type cluster struct {
	name     string
	settings clusterSettings

	mu  sync.Mutex // serialises setEndpoints
	eps atomic.Pointer[[]*endpoint]
	rr  atomic.Uint32

	hash *hashPolicy // nil unless consistent-hash
	ring atomic.Pointer[ring]
	cb   *breaker     // nil without limits
	od   *outlier     // nil without outlier detection
	tls  *upstreamTLS // nil: plaintext
	id   atomic.Pointer[meshIdentity]
	meta atomic.Pointer[map[string]string]
}

// endpoint is one upstream with its own keep-alive pool, so that removing
// it closes exactly its connections.
type endpoint struct {
	addr    string
	mesh    bool
	active  atomic.Int32 // requests in flight (least-request)
	tr      *http.Transport
	h1      *h1pool // nil for HTTP/2 clusters
	outlier epOutlier
	labels  atomic.Pointer[map[string]string] // Endpoint.Labels (debugging)
	// dial connects (TCP, then TLS if the cluster originates it);
	// counted: a connection slot is held (see breaker.connect).
	dial func(ctx context.Context, counted bool) (net.Conn, error)
}

func newCluster(name string, s clusterSettings) *cluster {
	c := &cluster{name: name, settings: s}
	c.eps.Store(&[]*endpoint{})
	if s.hash != (hashPolicy{}) {
		hp := s.hash
		c.hash = &hp
	}
	c.cb = newBreaker(&s.pool)
	if c.cb != nil {
		c.cb.evict = c.evictIdle
	}
	c.od = newOutlier(c, &s.outlier)
	return c
}

// setEndpoints replaces the endpoint set, keeping the state of endpoints
// that stay, and closes the idle connections of those that go.
func (c *cluster) setEndpoints(eps []Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.eps.Load()
	byAddr := make(map[string]*endpoint, len(old))
	for _, e := range old {
		byAddr[e.addr] = e
	}
	next := make([]*endpoint, 0, len(eps))
	seen := make(map[string]bool, len(eps))
	kept := make(map[*endpoint]bool, len(eps))
	for _, ep := range eps {
		if seen[ep.Address] {
			continue
		}
		seen[ep.Address] = true
		e := byAddr[ep.Address]
		if e == nil || e.mesh != ep.Mesh {
			e = c.newEndpoint(ep)
		}
		if ep.Labels != nil {
			l := ep.Labels
			e.labels.Store(&l)
		} else {
			e.labels.Store(nil)
		}
		kept[e] = true
		next = append(next, e)
	}
	if c.hash != nil {
		c.ring.Store(newRing(next, c.hash.ringSize))
	}
	c.eps.Store(&next)
	c.od.refresh()
	for _, e := range old {
		if !kept[e] {
			e.tr.CloseIdleConnections()
			if e.h1 != nil {
				e.h1.closeIdle(true)
			}
		}
	}
}

// endpoints returns the current set (do not modify).
func (c *cluster) endpoints() []*endpoint { return *c.eps.Load() }

// close drops every pooled connection (the cluster left the config or
// the proxy stopped).
func (c *cluster) close() {
	c.od.close()
	for _, e := range c.endpoints() {
		e.tr.CloseIdleConnections()
		if e.h1 != nil {
			e.h1.closeIdle(false)
		}
	}
}

// connectError marks a failure to establish the upstream connection, as
// opposed to one on an established connection.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func (c *cluster) newEndpoint(ep Endpoint) *endpoint {
	addr := ep.Address
	d := &net.Dialer{Timeout: c.settings.connectTimeout, KeepAlive: 30 * time.Second}
	tcfg := c.tls.forEndpoint(ep.Mesh)
	cb := c.cb
	if !cb.limitsConns() {
		cb = nil
	}
	connect := func(ctx context.Context, counted bool) (net.Conn, error) {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if counted {
			if err != nil {
				cb.connected(nil)
			} else {
				conn = cb.connected(conn)
			}
		}
		if err != nil {
			return nil, &connectError{err}
		}
		if tcfg != nil {
			if conn, err = handshake(ctx, conn, tcfg); err != nil {
				return nil, &connectError{err}
			}
		}
		return conn, nil
	}
	// http.Transport dials on its own: the connection limit is taken
	// here. h1pool takes it itself, before dialling, so that a returned
	// idle connection can serve a waiting request.
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		if cb != nil {
			if _, err := cb.connect(ctx, nil); err != nil {
				return nil, err
			}
		}
		return connect(ctx, cb != nil)
	}
	e := &endpoint{addr: addr, mesh: ep.Mesh, dial: connect, tr: &http.Transport{
		DialContext:           dial,
		Proxy:                 nil, // never an environment proxy
		MaxIdleConnsPerHost:   c.settings.maxIdle,
		IdleConnTimeout:       c.settings.idleTimeout,
		DisableCompression:    true, // pass encodings through untouched
		DisableKeepAlives:     c.settings.pool.MaxRequestsPerConnection == 1,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}}
	if c.settings.protocol == ProtocolH2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		e.tr.Protocols = &p
	} else {
		e.h1 = &h1pool{addr: addr, maxIdle: c.settings.maxIdle, idleTimeout: c.settings.idleTimeout,
			lim: cb, perConn: c.settings.pool.MaxRequestsPerConnection,
			dial: func(ctx context.Context, _, _ string) (net.Conn, error) { return connect(ctx, cb != nil) }}
	}
	return e
}

// pick chooses an endpoint not in tried, or any endpoint when all were
// tried; nil when the cluster has none.
func (c *cluster) pick(tried []*endpoint) *endpoint { return c.pickKey(tried, hashKey{}) }

// pickKey is pick for a request with hash key hk (consistent-hash
// clusters). Endpoints ejected by outlier detection are skipped.
func (c *cluster) pickKey(tried []*endpoint, hk hashKey) *endpoint {
	eps := c.od.candidates(c.endpoints())
	if hk.ok {
		if r := c.ring.Load(); r != nil {
			return r.pick(hk.h, tried, c.od.usable)
		}
	}
	n := len(eps)
	switch {
	case n == 0:
		return nil
	case n == 1:
		return eps[0]
	}
	switch c.settings.lb {
	case LBLeastRequest:
		// Power of two choices: two distinct endpoints at random, the
		// one with fewer requests in flight wins (as Envoy does).
		i, j := rand.IntN(n), rand.IntN(n-1)
		if j >= i {
			j++
		}
		a, b := eps[i], eps[j]
		switch ta, tb := contains(tried, a), contains(tried, b); {
		case ta && tb:
			if e := c.untriedFrom(eps, i, tried); e != nil {
				return e
			}
			return a
		case ta:
			return b
		case tb:
			return a
		}
		if b.active.Load() < a.active.Load() {
			return b
		}
		return a
	case LBRandom, LBConsistentHash: // a request without a hash key: random
		start := rand.IntN(n)
		if e := c.untriedFrom(eps, start, tried); e != nil {
			return e
		}
		return eps[start]
	default:
		start := int(c.rr.Add(1) % uint32(n))
		if e := c.untriedFrom(eps, start, tried); e != nil {
			return e
		}
		return eps[start]
	}
}

// untriedFrom returns the first endpoint from index start (wrapping)
// that is not in tried.
func (c *cluster) untriedFrom(eps []*endpoint, start int, tried []*endpoint) *endpoint {
	for i := range eps {
		e := eps[(start+i)%len(eps)]
		if !contains(tried, e) {
			return e
		}
	}
	return nil
}

func contains(list []*endpoint, e *endpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}
