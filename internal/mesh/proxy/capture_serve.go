package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// captureServer serves one capture listener: it accepts the connections
// nftables redirected to it, reads each one's original destination,
// picks its FilterChain in the configuration in effect at that moment
// and then serves it as HTTP (handing it to the listener's http.Server
// through a channel listener) or forwards it as TCP.
//
// Established connections keep the chain they were dispatched to across
// configuration updates (an HTTP connection routes each request with the
// chain's route table as it is in the configuration then; a request on a
// connection whose chain left the configuration is refused with 503).
type captureServer struct {
	p    *Proxy
	name string
	log  *slog.Logger
	ln   net.Listener
	http *chanListener

	mu    sync.Mutex
	conns map[net.Conn]struct{} // connections not owned by the HTTP server
	wg    sync.WaitGroup        // connection handlers
}

// Capture timeouts.
const (
	// permissivePeekTimeout bounds waiting for a client's first bytes on
	// a permissive chain, to tell mesh mTLS from plaintext. A
	// server-first protocol on a permissive port waits this long before
	// it is served as plaintext. Envoy's TLS inspector has the same
	// trade-off, and Istio's default protocolDetectionTimeout is 0 (wait
	// for the client forever: Istio documents server-first protocols as
	// needing STRICT or DISABLE); Skiff gives up after a second instead.
	permissivePeekTimeout = time.Second
	// handshakeTimeout bounds a mesh mTLS handshake.
	handshakeTimeout = 10 * time.Second
)

func (p *Proxy) serveCapture(l *listenerSpec, ln net.Listener) {
	cs := &captureServer{p: p, name: l.name, log: p.log.With("listener", l.name), ln: ln,
		http: newChanListener(ln.Addr()), conns: map[net.Conn]struct{}{}}
	srv := &http.Server{
		Handler:           p.Handler(l.name),
		ReadHeaderTimeout: p.opts.ReadHeaderTimeout,
		IdleTimeout:       p.opts.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnContext:       connContext,
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true) // h2 by ALPN under mesh mTLS
	protos.SetUnencryptedHTTP2(true)
	srv.Protocols = &protos
	s := &server{key: l.restartKey(), address: l.address, ln: ln, srv: srv, capture: cs}
	p.servers[l.name] = s
	p.log.Info("capturing", "listener", l.name, "address", ln.Addr().String(), "direction", l.capture.direction)
	p.wg.Go(func() {
		if err := srv.Serve(cs.http); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.draining.Load() {
			p.log.Error("listener failed", "listener", l.name, "err", err)
		}
	})
	p.wg.Go(func() { cs.accept(s) })
}

func (cs *captureServer) accept(s *server) {
	var delay time.Duration
	for {
		c, err := cs.ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			cs.log.Warn("accept failed", "err", err, "retry", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		cs.track(c)
		cs.wg.Go(func() { cs.handle(c) })
	}
}

// handle dispatches one accepted connection.
func (cs *captureServer) handle(raw net.Conn) {
	handed := false
	defer func() {
		if !handed {
			cs.untrack(raw)
			_ = raw.Close()
		}
	}()
	local := addrPort(raw.LocalAddr())
	dst, err := originalDst(raw)
	if err != nil {
		cs.log.Debug("no original destination", "remote", raw.RemoteAddr().String(), "err", err)
		dst = local
	}
	if dst == local {
		// Not redirected: a client connected to the capture port
		// itself. Passing it through would connect back here.
		return
	}
	l := cs.p.snap.Load().listeners[cs.name]
	if l == nil || l.capture == nil {
		return
	}
	spec := l.capture
	ch := spec.match(dst)
	if ch == nil {
		if spec.unmatched == Blackhole {
			return
		}
		cs.forwardTCP(raw, spec, nil, dst, "")
		return
	}
	conn := &captureConn{Conn: raw, meta: connMeta{listener: cs.name, chain: ch.name, dst: dst}}
	var served net.Conn = conn
	if spec.direction == Inbound && ch.mtls != MTLSDisable {
		mesh := true
		if ch.mtls == MTLSPermissive {
			if mesh, err = conn.peekMeshHello(permissivePeekTimeout); err != nil {
				cs.log.Debug("reading first bytes failed", "remote", raw.RemoteAddr().String(), "err", err)
				return
			}
		}
		if mesh {
			tc, err := acceptMeshTLS(conn, spec.identity, ch.http != nil)
			if err != nil {
				cs.log.Debug("mesh mTLS handshake failed", "chain", ch.name, "remote", raw.RemoteAddr().String(), "err", err)
				return
			}
			served = tc
			if tc.ConnectionState().NegotiatedProtocol != "h2" {
				// net/http serves a *tls.Conn with an ALPN protocol
				// it does not know (MeshALPN) as nothing at all.
				served = tlsH1Conn{tc}
			}
		}
	}
	if ch.http != nil {
		cs.untrack(raw)
		handed = true
		if !cs.http.hand(served) {
			_ = served.Close()
		}
		return
	}
	cs.forwardTCP(served, spec, ch, dst, conn.meta.principal)
}

func (cs *captureServer) track(c net.Conn) {
	cs.mu.Lock()
	cs.conns[c] = struct{}{}
	cs.mu.Unlock()
}

func (cs *captureServer) untrack(c net.Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

// drain waits for the connections it still owns (TCP, handshakes) until
// ctx ends, then closes them. The socket and the HTTP server are closed
// by the caller.
func (cs *captureServer) drain(ctx context.Context) {
	_ = cs.http.Close()
	done := make(chan struct{})
	go func() { cs.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	cs.mu.Lock()
	for c := range cs.conns {
		_ = c.Close()
	}
	cs.mu.Unlock()
	<-done
}

// captureConn is an accepted connection with what the capture listener
// learnt about it; bytes read to look at the start of the stream are
// read again first.
type captureConn struct {
	net.Conn
	meta   connMeta
	prefix []byte
}

func (c *captureConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// LocalAddr is the original destination: what the client connected to.
func (c *captureConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.meta.dst) }

// CloseWrite half-closes the connection.
func (c *captureConn) CloseWrite() error { return halfClose(c.Conn) }

// WriteTo lets io.Copy splice from the socket once the prefix is read.
func (c *captureConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.prefix) > 0 {
		m, err := w.Write(c.prefix)
		n += int64(m)
		c.prefix = c.prefix[m:]
		if err != nil {
			return n, err
		}
	}
	m, err := io.Copy(w, c.Conn)
	return n + m, err
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// chanListener is a net.Listener fed with connections accepted
// elsewhere: the capture listener's HTTP server serves from it.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// hand passes c to the server; false once the listener is closed.
func (l *chanListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// tlsH1Conn is a mesh mTLS connection served as HTTP/1.1 (the request's
// TLS field still set, through ConnectionState).
type tlsH1Conn struct{ *tls.Conn }
