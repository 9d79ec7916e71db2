package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// This file is a cluster's circuit breaker (DestinationRule's
// connectionPool, Envoy's circuit_breakers thresholds): counters shared by
// every endpoint of the cluster, checked before a try, a retry and a new
// connection. A request over a limit is answered 503 with flag UO at once;
// only MaxPendingRequests requests ever wait for a connection.

// errOverflow is a try refused by the circuit breaker.
var errOverflow = errors.New("upstream overflow")

// overflowBody is what a refused request is answered with (as Envoy says
// it).
const overflowBody = "upstream connect error or disconnect/reset before headers. reset reason: overflow\n"

// breaker holds a cluster's limits and what counts against them; nil
// when the cluster has no ConnectionPool (then nothing is counted).
type breaker struct {
	maxConns, maxPending, maxRequests, maxRetries int64 // 0: no limit

	conns    atomic.Int64 // open connections, all endpoints
	pending  atomic.Int64 // requests waiting for a connection
	requests atomic.Int64 // tries in flight
	retries  atomic.Int64 // retries in flight

	// evict closes one idle connection of the cluster to free a
	// connection slot for a waiter (set by the cluster).
	evict func() bool

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when a slot or an idle connection may be free
}

func newBreaker(p *ConnectionPool) *breaker {
	if p == nil || (p.MaxConnections == 0 && p.MaxPendingRequests == 0 && p.MaxRequests == 0 && p.MaxRetries == 0) {
		return nil
	}
	return &breaker{maxConns: int64(p.MaxConnections), maxPending: int64(p.MaxPendingRequests),
		maxRequests: int64(p.MaxRequests), maxRetries: int64(p.MaxRetries), wake: make(chan struct{})}
}

// take adds one to n unless that would pass max (0: no limit).
func take(n *atomic.Int64, max int64) bool {
	if max == 0 {
		n.Add(1)
		return true
	}
	for {
		v := n.Load()
		if v >= max {
			return false
		}
		if n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// enter admits one try (and, with retry, one retry); false means
// overflow. Every admitted try ends with leave(retry).
func (b *breaker) enter(retry bool) bool {
	if b == nil {
		return true
	}
	if !take(&b.requests, b.maxRequests) {
		return false
	}
	if retry && !take(&b.retries, b.maxRetries) {
		b.requests.Add(-1)
		return false
	}
	return true
}

func (b *breaker) leave(retry bool) {
	if b == nil {
		return
	}
	b.requests.Add(-1)
	if retry {
		b.retries.Add(-1)
	}
}

// retryAllowed reports whether one more retry would stay within
// MaxRetries (checked before deciding to retry; enter counts it).
func (b *breaker) retryAllowed() bool {
	return b == nil || b.maxRetries == 0 || b.retries.Load() < b.maxRetries
}

// limitsConns reports whether connections are counted (a new connection
// may have to wait).
func (b *breaker) limitsConns() bool {
	return b != nil && (b.maxConns > 0 || b.maxPending > 0)
}

// signal wakes the requests waiting for a connection, if any.
func (b *breaker) signal() {
	if b.pending.Load() == 0 {
		return
	}
	b.mu.Lock()
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// connect is the wait for a connection of a request that found no idle
// one: it counts the request as pending (overflow if MaxPendingRequests
// are already waiting) until it has a connection slot or idle() hands
// it a pooled connection. With a slot (c == nil, err == nil) the caller
// dials, then calls connected; with c it uses c.
func (b *breaker) connect(ctx context.Context, idle func() *h1conn) (c *h1conn, err error) {
	if !take(&b.pending, b.maxPending) {
		return nil, errOverflow
	}
	evicted := false
	for {
		b.mu.Lock()
		ch := b.wake
		b.mu.Unlock()
		if idle != nil {
			if c = idle(); c != nil {
				b.pending.Add(-1)
				return c, nil
			}
		}
		if take(&b.conns, b.maxConns) {
			return nil, nil // pending until connected
		}
		// Idle connections to other endpoints hold the slots: free one.
		if !evicted && b.evict != nil {
			evicted = b.evict()
			if evicted {
				continue
			}
		}
		select {
		case <-ch:
			evicted = false
		case <-ctx.Done():
			b.pending.Add(-1)
			return nil, ctx.Err()
		}
	}
}

// connected ends the pending wait started by connect; conn is the new
// connection (nil if dialling failed, which frees the slot).
func (b *breaker) connected(conn net.Conn) net.Conn {
	b.pending.Add(-1)
	if conn == nil {
		b.conns.Add(-1)
		b.signal()
		return nil
	}
	return &countedConn{Conn: conn, b: b}
}

// countedConn frees its connection slot when closed.
type countedConn struct {
	net.Conn
	b    *breaker
	once atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.once.CompareAndSwap(false, true) {
		c.b.conns.Add(-1)
		c.b.signal()
	}
	return err
}

// BreakerStatus is a cluster's circuit breaker counters.
type BreakerStatus struct {
	Connections, Pending, Requests, Retries int64
}

func (b *breaker) status() *BreakerStatus {
	if b == nil {
		return nil
	}
	return &BreakerStatus{Connections: b.conns.Load(), Pending: b.pending.Load(),
		Requests: b.requests.Load(), Retries: b.retries.Load()}
}
