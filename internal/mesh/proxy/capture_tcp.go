package proxy

import (
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

// maxTCPConnectAttempts bounds the endpoints tried for one connection.
const maxTCPConnectAttempts = 3

// forwardTCP connects client to cl (nil: to dst) and copies bytes both
// ways until both sides are done.
func (cs *captureServer) forwardTCP(client net.Conn, cl *cluster, dst netip.AddrPort) {
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
	splice(client, up)
}

func (cs *captureServer) dialUpstream(cl *cluster, dst netip.AddrPort) (net.Conn, *endpoint) {
	if cl == nil {
		d := net.Dialer{Timeout: DefaultConnectTimeout}
		c, err := d.Dial("tcp", dst.String())
		if err != nil {
			cs.log.Debug("passthrough connect failed", "dst", dst.String(), "err", err)
			return nil, nil
		}
		return c, nil
	}
	d := net.Dialer{Timeout: cl.settings.connectTimeout}
	var tried []*endpoint
	for range maxTCPConnectAttempts {
		ep := cl.pick(tried)
		if ep == nil || contains(tried, ep) {
			break
		}
		tried = append(tried, ep)
		c, err := d.Dial("tcp", ep.addr)
		if err == nil {
			return c, ep
		}
		cs.log.Debug("tcp upstream connect failed", "cluster", cl.name, "endpoint", ep.addr, "err", err)
	}
	return nil, nil
}

// splice copies a→b and b→a; a direction that ends cleanly half-closes
// its destination, one that fails closes both connections.
func splice(a, b net.Conn) (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Go(func() { ba = copyHalf(a, b) })
	ab = copyHalf(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return ab, ba
}

func copyHalf(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		_ = dst.Close()
		_ = src.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return n
}
