package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"skiff.dev/skiff/internal/errdefs"
)

// This file compiles and wires a Cluster's mesh fields (Hash, Pool,
// Outlier, TLS, Metadata, TCP) into the cluster's settings and live
// state.

// trafficPolicy validates in's mesh fields into set; errors name the
// cluster and the field (clusters["reviews"].pool.maxConnections).
func (c *compiler) trafficPolicy(in *Cluster, set *clusterSettings) {
	f := fmt.Sprintf("clusters[%q]", in.Name)
	set.tcp = in.TCP
	if in.TCP && in.Protocol != "" && in.Protocol != ProtocolHTTP1 {
		c.errorf("%s.protocol: a TCP cluster has no HTTP protocol", f)
	}
	if h := in.Hash; h != nil {
		hf := f + ".hash"
		if in.LB != LBConsistentHash && in.LB != "" {
			c.errorf("%s: set but lb is %q (want %q)", hf, in.LB, LBConsistentHash)
		}
		set.lb = LBConsistentHash
		n := 0
		if h.Header != "" {
			n++
			if !validHeaderName(h.Header) {
				c.errorf("%s.header: bad header name %q", hf, h.Header)
			}
			set.hash.header = http.CanonicalHeaderKey(h.Header)
		}
		if h.Cookie != nil {
			n++
			if h.Cookie.Name == "" || !validHeaderName(h.Cookie.Name) {
				c.errorf("%s.cookie.name: bad cookie name %q", hf, h.Cookie.Name)
			}
			if h.Cookie.TTL < 0 {
				c.errorf("%s.cookie.ttl: negative", hf)
			}
			set.hash.cookie, set.hash.cookieTTL, set.hash.path = h.Cookie.Name, h.Cookie.TTL, h.Cookie.Path
		}
		if h.SourceIP {
			n++
			set.hash.sourceIP = true
		}
		if h.Query != "" {
			n++
			set.hash.query = h.Query
		}
		if n != 1 {
			c.errorf("%s: exactly one of header, cookie, sourceIP and query required (have %d)", hf, n)
		}
		if in.TCP && !h.SourceIP {
			c.errorf("%s: a TCP cluster can hash the source IP only", hf)
		}
		set.hash.ringSize = h.MinimumRingSize
		switch {
		case h.MinimumRingSize < 0 || h.MinimumRingSize > maxRingSize:
			c.errorf("%s.minimumRingSize: %d (0 to %d)", hf, h.MinimumRingSize, maxRingSize)
		case h.MinimumRingSize == 0:
			set.hash.ringSize = DefaultMinimumRingSize
		}
	} else if in.LB == LBConsistentHash {
		c.errorf("%s.hash: required with lb %q", f, LBConsistentHash)
	}
	if p := in.Pool; p != nil {
		set.pool = *p
		if p.MaxConnections < 0 || p.MaxPendingRequests < 0 || p.MaxRequests < 0 ||
			p.MaxRequestsPerConnection < 0 || p.MaxRetries < 0 || p.IdleTimeout < 0 {
			c.errorf("%s.pool: limits and timeouts must not be negative", f)
		}
		if p.IdleTimeout > 0 {
			set.idleTimeout = p.IdleTimeout
		}
	}
	if o := in.Outlier; o != nil {
		set.outlier = *o
		if o.Consecutive5xx < 0 || o.ConsecutiveGatewayErrors < 0 || o.Interval < 0 || o.BaseEjectionTime < 0 {
			c.errorf("%s.outlier: counts and durations must not be negative", f)
		}
		if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			c.errorf("%s.outlier.maxEjectionPercent: %d (0 to 100)", f, o.MaxEjectionPercent)
		}
		if o.MinHealthPercent < 0 || o.MinHealthPercent > 100 {
			c.errorf("%s.outlier.minHealthPercent: %d (0 to 100)", f, o.MinHealthPercent)
		}
	}
	if _, err := compileTLS(in.TLS, set.protocol, in.TCP, new(atomic.Pointer[meshIdentity]), c.identity); err != nil {
		c.errorf("%s.tls.%v", f, err)
	}
	set.tlsKey = tlsKey(in.TLS)
}

// buildCluster makes the live cluster for a validated in.
func buildCluster(in *Cluster, set clusterSettings) *cluster {
	cl := newCluster(in.Name, set)
	cl.tls, _ = compileTLS(in.TLS, set.protocol, in.TCP, &cl.id, true)
	cl.setEndpoints(in.Endpoints)
	return cl
}

// publishClusters hands the snapshot's clusters what may change without
// a new cluster: the mesh identity (new connections use it) and the
// metadata.
func (s *snapshot) publishClusters() {
	for i := range s.cfg.Clusters {
		in := &s.cfg.Clusters[i]
		cl := s.clusters[in.Name]
		if cl == nil {
			continue
		}
		cl.id.Store(s.meshID)
		if in.Metadata != nil {
			m := in.Metadata
			cl.meta.Store(&m)
		} else {
			cl.meta.Store(nil)
		}
	}
}

// metadata is Cluster.Metadata (read only).
func (c *cluster) metadata() map[string]string {
	if m := c.meta.Load(); m != nil {
		return *m
	}
	return nil
}

// evictIdle closes an idle connection of the cluster to free a
// connection slot for a request waiting for one: the oldest of an
// endpoint's h1 pool (true), or else every idle connection the
// endpoints' http.Transports keep (false: whether there were any is
// unknown; closing one wakes the waiters).
func (c *cluster) evictIdle() bool {
	eps := c.endpoints()
	for _, e := range eps {
		if e.h1 != nil && e.h1.closeOldest() {
			return true
		}
	}
	for _, e := range eps {
		e.tr.CloseIdleConnections()
	}
	return false
}

// maxTCPConnectTries bounds the endpoints dialEndpoint tries.
const maxTCPConnectTries = 3

// dialEndpoint connects to an endpoint of the cluster for a forwarded TCP
// connection: it picks the endpoint with the cluster's LB (src, the
// client's address, feeds a source-IP hash policy), skipping ejected
// ones; holds a connection slot of the circuit breaker (errOverflow when
// none is free and MaxPendingRequests already wait); originates the
// cluster's TLS; charges failures to outlier detection; and tries
// another endpoint when connecting fails, up to three. The connection
// counts as a request in flight on the endpoint until closed.
func (c *cluster) dialEndpoint(ctx context.Context, src string) (net.Conn, *endpoint, error) {
	var hk hashKey
	if c.hash != nil && c.hash.sourceIP {
		hk = hashAddr(src)
	}
	var tried []*endpoint
	var lastErr error
	for range maxTCPConnectTries {
		ep := c.pickKey(tried, hk)
		if ep == nil || contains(tried, ep) {
			break
		}
		tried = append(tried, ep)
		counted := c.cb.limitsConns()
		if counted {
			if _, err := c.cb.connect(ctx, nil); err != nil {
				return nil, ep, fmt.Errorf("cluster %q: %w: %w", c.name, errdefs.ErrUnavailable, err)
			}
		}
		conn, err := ep.dial(ctx, counted)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return nil, ep, err
			}
			c.od.report(ep, outlierCodeLocalFailure)
			continue
		}
		c.od.report(ep, http.StatusOK)
		ep.active.Add(1)
		return &activeConn{Conn: conn, ep: ep}, ep, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no healthy upstream")
	}
	return nil, nil, fmt.Errorf("cluster %q: %w: %w", c.name, errdefs.ErrUnavailable, lastErr)
}

// activeConn counts as a request in flight on its endpoint until closed.
type activeConn struct {
	net.Conn
	ep   *endpoint
	once atomic.Bool
}

func (c *activeConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.ep.active.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes when the connection can (TCP forwarding).
func (c *activeConn) CloseWrite() error { return closeWrite(c.Conn) }

// CloseWrite half-closes when the connection can.
func (c *countedConn) CloseWrite() error { return closeWrite(c.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
