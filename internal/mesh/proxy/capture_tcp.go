package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
)

// TCP chains forward whole connections: to an endpoint of the chain's
// cluster (picked with the cluster's load balancing; a failed connect
// tries up to two other endpoints), or to the original destination.
// The upstream connection is opened as soon as the client's is accepted,
// so server-first protocols work; each direction is half-closed when its
// sender finishes, and both connections close when both directions are
// done or either breaks.

// TCPConn describes a connection a capture listener forwards whole, for
// Options.TCP (the mesh's TCP telemetry).
type TCPConn struct {
	Listener  string
	Direction Direction
	// FilterChain is empty for a connection no chain matched.
	FilterChain string
	// OriginalDst is the connection's original destination (ip:port).
	OriginalDst string
	// Source is the client's address (ip:port).
	Source string
	// PeerPrincipal is the client's mesh identity under mesh mTLS.
	PeerPrincipal string
	// Cluster is the TCP chain's cluster, or PassthroughCluster.
	Cluster string
	// ClusterMetadata is the cluster's Cluster.Metadata (read only).
	ClusterMetadata map[string]string
	// UpstreamHost is the endpoint connected to.
	UpstreamHost string
}

// TCPStream counts one forwarded connection's traffic. Received and
// Sent are called from the two copying goroutines as bytes pass; Close
// once, when both directions are done.
type TCPStream interface {
	// Received counts n bytes from the client toward the upstream.
	Received(n int)
	// Sent counts n bytes from the upstream toward the client.
	Sent(n int)
	Close()
}

// maxTCPConnectAttempts bounds the endpoints tried for one connection.
const maxTCPConnectAttempts = 3

// forwardTCP connects client to ch's cluster (to dst when ch is nil or
// has none) and copies bytes both ways until both sides are done.
func (cs *captureServer) forwardTCP(client net.Conn, spec *captureSpec, ch *chainSpec, dst netip.AddrPort, principal string) {
	var cl *cluster
	if ch != nil {
		cl = ch.tcp
	}
	info := &TCPConn{Listener: cs.name, Direction: spec.direction, OriginalDst: dst.String(),
		Source: client.RemoteAddr().String(), PeerPrincipal: principal, Cluster: PassthroughCluster}
	if ch != nil {
		info.FilterChain = ch.name
		if cl != nil {
			info.Cluster, info.ClusterMetadata = cl.name, ch.tcpMetadata
		}
	}
	if authorize := cs.p.opts.AuthorizeConn; authorize != nil && spec.direction == Inbound {
		if err := authorize(info); err != nil {
			cs.log.Info("connection denied", "chain", info.FilterChain, "source", info.Source,
				"dst", info.OriginalDst, "sourcePrincipal", principal, "err", err)
			return
		}
	}
	up, ep := cs.dialUpstream(cl, dst)
	if up == nil {
		return
	}
	if ep != nil {
		ep.active.Add(1)
		defer ep.active.Add(-1)
	}
	cs.track(up)
	defer cs.untrack(up)
	defer up.Close()
	var stream TCPStream
	if obs := cs.p.opts.TCP; obs != nil {
		info.UpstreamHost = up.RemoteAddr().String()
		stream = obs(info)
	}
	if stream == nil {
		splice(client, up)
		return
	}
	defer stream.Close()
	splice(&meteredConn{Conn: client, count: stream.Sent}, &meteredConn{Conn: up, count: stream.Received})
}

func (cs *captureServer) dialUpstream(cl *cluster, dst netip.AddrPort) (net.Conn, *endpoint) {
	if cl == nil {
		c, err := net.DialTimeout("tcp", dst.String(), DefaultConnectTimeout)
		if err != nil {
			cs.log.Debug("passthrough connect failed", "dst", dst.String(), "err", err)
			return nil, nil
		}
		return c, nil
	}
	var tried []*endpoint
	for range maxTCPConnectAttempts {
		ep := cl.pick(tried)
		if ep == nil || contains(tried, ep) {
			break
		}
		tried = append(tried, ep)
		c, err := dialEndpoint(ep)
		if err == nil {
			return c, ep
		}
		cs.log.Debug("tcp upstream connect failed", "cluster", cl.name, "endpoint", ep.addr, "err", err)
	}
	return nil, nil
}

// dialEndpoint connects to one of a TCP cluster's endpoints the way the
// cluster connects for HTTP (its connect timeout, and whatever else the
// endpoint's dialer does: upstream TLS, connection limits).
func dialEndpoint(ep *endpoint) (net.Conn, error) {
	return ep.tr.DialContext(context.Background(), "tcp", ep.addr)
}

// meteredConn reports the bytes written to it.
type meteredConn struct {
	net.Conn
	count func(int)
}

func (c *meteredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.count(n)
	return n, err
}

func (c *meteredConn) CloseWrite() error { return halfClose(c.Conn) }

// splice copies a→b and b→a; a direction that ends cleanly half-closes
// its destination, one that fails closes both connections.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(a, b) })
	copyHalf(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
}

func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if err := halfClose(dst); err != nil {
		_ = dst.Close()
	}
}

func halfClose(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
