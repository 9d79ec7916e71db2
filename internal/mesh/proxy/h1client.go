package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// h1pool is a plain HTTP/1.1 client for one endpoint, used for requests
// without a body that do not upgrade (most of them). It writes the request
// and reads the response on the handler's goroutine, which saves
// http.Transport's two goroutine hand-offs per request (about 40% more
// requests per second). Everything else goes through http.Transport.
type h1pool struct {
	addr        string
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration
	lim         *breaker // counts connections; nil without limits
	perConn     int      // requests per connection (0: no limit)

	mu     sync.Mutex
	idle   []*h1conn // most recently used last
	closed bool
	timer  *time.Timer // closes connections idle too long
}

type h1conn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	read     int64 // bytes read from c since the request was written
	uses     int   // requests written
	lastUsed time.Time
}

func (c *h1conn) Read(p []byte) (int, error) {
	n, err := c.c.Read(p)
	c.read += int64(n)
	return n, err
}

// replayable: a request that may be sent again on another connection when
// a pooled one turns out to be closed (as http.Transport decides).
func replayable(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// roundTrip sends r (no body) and returns the response; its Body returns
// the connection to the pool once read to the end.
func (p *h1pool) roundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	for stale := 0; ; stale++ {
		c, reused, err := p.get(ctx, stale > 0)
		if err != nil {
			return nil, err
		}
		res, err := p.exchange(ctx, c, r)
		if err == nil {
			return res, nil
		}
		// A pooled connection the upstream had closed: nothing came back.
		if reused && c.read == 0 && ctx.Err() == nil && stale < 2 && replayable(r) {
			continue
		}
		return nil, err
	}
}

func (p *h1pool) exchange(ctx context.Context, c *h1conn, r *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.c.Close()
		return nil, err
	}
	c.read = 0
	c.uses++
	writeRequest(c.bw, r)
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	var res *http.Response
	for {
		var err error
		if res, err = http.ReadResponse(c.br, r); err != nil {
			return fail(err)
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		_ = res.Body.Close() // 1xx: informational, the answer follows
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("upstream switched protocols unasked"))
	}
	b := &h1body{rc: res.Body, p: p, c: c, stop: stop, keep: !res.Close && (p.perConn == 0 || c.uses < p.perConn)}
	if res.Body == http.NoBody {
		b.release(true)
		return res, nil
	}
	res.Body = b
	return res, nil
}

// writeRequest writes r's request line and headers (r has no body).
func writeRequest(w *bufio.Writer, r *http.Request) {
	_, _ = w.WriteString(r.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(r.URL.RequestURI())
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(r.Host)
	_, _ = w.WriteString("\r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			if v == "" && k == "User-Agent" {
				continue
			}
			if strings.ContainsAny(v, "\r\n") {
				continue // never produce a second header line
			}
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(v)
			_, _ = w.WriteString("\r\n")
		}
	}
	_, _ = w.WriteString("\r\n")
}

// h1body returns the connection to the pool at EOF and closes it if the
// body is abandoned.
type h1body struct {
	rc   io.ReadCloser
	p    *h1pool
	c    *h1conn
	stop func() bool
	keep bool
}

func (b *h1body) Read(buf []byte) (int, error) {
	if b.c == nil {
		return 0, io.EOF
	}
	n, err := b.rc.Read(buf)
	if err == io.EOF {
		b.release(true)
	} else if err != nil {
		b.release(false)
	}
	return n, err
}

func (b *h1body) Close() error {
	if b.c != nil {
		b.release(false)
	}
	return nil
}

func (b *h1body) release(done bool) {
	c := b.c
	b.c = nil
	// stop reports false if ctx already ended (the deadline may be set);
	// bytes beyond the response mean the upstream broke the protocol.
	if b.stop() && done && b.keep && c.br.Buffered() == 0 {
		b.p.put(c)
		return
	}
	_ = c.c.Close()
}

// get returns an idle connection, or a new one (fresh forces a new one).
func (p *h1pool) get(ctx context.Context, fresh bool) (c *h1conn, reused bool, err error) {
	if !fresh {
		if c = p.popIdle(); c != nil {
			return c, true, nil
		}
	}
	if p.lim != nil {
		// Wait for a connection slot, or for an idle connection.
		idle := p.popIdle
		if fresh {
			idle = nil
		}
		if c, err = p.lim.connect(ctx, idle); err != nil {
			return nil, false, err
		}
		if c != nil {
			return c, true, nil
		}
	}
	conn, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	c = &h1conn{c: conn}
	c.br = bufio.NewReaderSize(c, 16<<10)
	c.bw = bufio.NewWriterSize(conn, 4<<10)
	return c, false, nil
}

func (p *h1pool) popIdle() (c *h1conn) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	return c
}

// closeOldest closes the longest idle connection, if any.
func (p *h1pool) closeOldest() bool {
	p.mu.Lock()
	if len(p.idle) == 0 {
		p.mu.Unlock()
		return false
	}
	c := p.idle[0]
	p.idle = append(p.idle[:0], p.idle[1:]...)
	p.mu.Unlock()
	_ = c.c.Close()
	return true
}

func (p *h1pool) put(c *h1conn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		_ = c.c.Close()
		return
	}
	p.idle = append(p.idle, c)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idleTimeout, p.expire)
	}
	p.mu.Unlock()
	if p.lim != nil {
		p.lim.signal() // a request waiting for a connection may take it
	}
}

// expire closes connections idle longer than idleTimeout and re-arms
// while some remain.
func (p *h1pool) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := time.Now().Add(-p.idleTimeout)
	n := 0
	for n < len(p.idle) && p.idle[n].lastUsed.Before(cutoff) {
		_ = p.idle[n].c.Close()
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	if len(p.idle) > 0 && !p.closed {
		p.timer.Reset(p.idle[0].lastUsed.Add(p.idleTimeout).Sub(time.Now()) + time.Millisecond)
	} else {
		p.timer = nil
	}
}

// closeIdle closes the pooled connections; with final, later returns are
// closed too (the endpoint is gone).
func (p *h1pool) closeIdle(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		_ = c.c.Close()
	}
	p.idle = nil
	if final {
		p.closed = true
		if p.timer != nil {
			p.timer.Stop()
			p.timer = nil
		}
	}
}
