package dockerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/common"
	"golang.org/x/sys/unix"
	"skiff.dev/skiff/internal/errdefs"
)

// hijacked is an attach or exec connection taken over from net/http: the
// client's stdin comes in on it and the process's output goes out.
type hijacked struct {
	conn    net.Conn
	in      io.Reader   // the client's stdin
	upgrade bool        // the client asked for "Upgrade: tcp" (wants 101)
	header  http.Header // headers set before the hijack (Api-Version, ...)
	untrack func()
}

// hijack takes over r's connection. Nothing is written yet: the caller
// answers with writeHeader or writeError.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request) (*hijacked, error) {
	header := w.Header().Clone()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijacking the connection: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	// Stdin is what net/http had buffered, then the connection itself:
	// reading through rw.Reader would go through net/http's reader, which
	// cancels the request's context when the client half-closes.
	var in io.Reader = conn
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ := rw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)
	}
	h := &hijacked{conn: conn, in: in, upgrade: r.Header.Get("Upgrade") != "", header: header, untrack: func() {}}
	if st, _ := r.Context().Value(serveStateKey{}).(*serveState); st != nil {
		h.untrack = st.track(conn)
	}
	return h, nil
}

// writeHeader starts the stream: 101 for clients that asked to upgrade,
// 200 for older ones.
func (h *hijacked) writeHeader(contentType string) error {
	var b strings.Builder
	if h.upgrade {
		fmt.Fprintf(&b, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", contentType)
	} else {
		fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", contentType)
	}
	for _, k := range []string{"Api-Version", "Ostype", "Server"} {
		if v := h.header.Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(h.conn, b.String())
	return err
}

// writeError answers an error instead of starting the stream.
func (h *hijacked) writeError(err error) {
	status := statusOf(err)
	var body []byte
	if status != http.StatusNotModified {
		body, _ = json.Marshal(&common.ErrorResponse{Message: errdefs.Message(err)})
	}
	_, _ = fmt.Fprintf(h.conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// close ends the stream: the write side first, so the client reads all
// output and then EOF, then (after the client closes, or a grace period)
// the whole connection.
func (h *hijacked) close() {
	defer h.untrack()
	cw, ok := h.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		_ = h.conn.Close()
		return
	}
	// Closing with unread input would reset the connection and could
	// lose output in flight, so drain briefly first.
	_ = h.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	go func() {
		_, _ = io.Copy(io.Discard, h.conn)
		_ = h.conn.Close()
	}()
}

// hijackedContext is the context a hijacked stream runs in: not r's
// (net/http may cancel that when it sees the client half-close), but
// ended by the client hanging up, by Serve shutting down, or by cancel.
func hijackedContext(r *http.Request, h *hijacked) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stopWatch := watchHangup(h.conn, cancel)
	if st, _ := r.Context().Value(serveStateKey{}).(*serveState); st != nil {
		go func() {
			select {
			case <-st.draining:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { stopWatch(); cancel() }
}

// gate holds output back until the stream's header is out; the first
// Write (or open) sends it. Backends may write before telling us they
// are attached.
type gate struct {
	mu     sync.Mutex
	opened bool
	err    error
	start  func() error
	w      io.Writer
}

func (g *gate) open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openLocked()
}

func (g *gate) openLocked() error {
	if !g.opened {
		g.opened = true
		g.err = g.start()
	}
	return g.err
}

func (g *gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.openLocked(); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}

// watchHangup calls onHangup when the client closes the connection
// entirely. (A half-close, which is how clients end stdin, does not
// count: reading cannot tell the two apart, polling for POLLHUP can.)
// The returned func stops watching.
func watchHangup(conn net.Conn, onHangup func()) (stop func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return func() {}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	fd := -1
	_ = rc.Control(func(f uintptr) {
		fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil || fd < 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd)}} // HUP and ERR are always reported
		for {
			select {
			case <-done:
				return
			default:
			}
			n, err := unix.Poll(fds, 250)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 && fds[0].Revents&unix.POLLNVAL != 0 {
				return
			}
			if n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				onHangup()
				return
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}
