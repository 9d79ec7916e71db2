package dockercli

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// The fake engine's container programs and their streams: attach, wait
// and logs.

// runProgram plays the container's program, writing to its log and the
// attached connections, then exits.
func (f *fakeEngine) runProgram(c *fakeContainer, prog []string, attached []*attachConn) {
	emit := func(stream byte, text string) {
		f.mu.Lock()
		c.logs = append(c.logs, logLine{stream, text})
		f.mu.Unlock()
		for _, a := range attached {
			if (stream == 1 && a.stdout) || (stream == 2 && a.errs) {
				writeFrame(a.conn, stream, text, a.tty)
			}
		}
	}
	code := 0
	switch {
	case len(prog) > 0 && prog[0] == "echo":
		emit(1, strings.Join(prog[1:], " ")+"\n")
	case len(prog) > 1 && prog[0] == "fail":
		emit(2, "failing\n")
		code, _ = strconv.Atoi(prog[1])
	case len(prog) > 0 && prog[0] == "cat":
		for _, a := range attached {
			if !a.stdin {
				continue
			}
			buf := make([]byte, 4096)
			for {
				n, err := a.rw.Reader.Read(buf)
				if n > 0 {
					emit(1, string(buf[:n]))
				}
				if err != nil {
					break
				}
			}
		}
	default:
		f.mu.Lock()
		stop := c.stop
		f.mu.Unlock()
		select {
		case code = <-stop:
		case <-f.done:
		}
	}
	for _, a := range attached {
		a.conn.Close()
	}
	f.mu.Lock()
	c.state, c.exitCode = container.StateExited, code
	close(c.exited)
	autoRemove := c.host.AutoRemove
	f.mu.Unlock()
	if autoRemove {
		f.remove(c)
	}
}

// writeFrame writes text as the engine does: raw for a TTY, otherwise
// with the 8-byte stdcopy header.

func writeFrame(w io.Writer, stream byte, text string, tty bool) {
	if tty {
		_, _ = io.WriteString(w, text)
		return
	}
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(text)))
	_, _ = w.Write(append(hdr, text...))
}

func hijack(w http.ResponseWriter, multiplexed bool) (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ct := "application/vnd.docker.raw-stream"
	if multiplexed {
		ct = "application/vnd.docker.multiplexed-stream"
	}
	fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ct)
	return conn, rw, nil
}

func (f *fakeEngine) attach(w http.ResponseWriter, c *fakeContainer, q url.Values) {
	f.mu.Lock()
	tty := c.cfg.Tty
	f.mu.Unlock()
	conn, rw, err := hijack(w, !tty)
	if err != nil {
		f.t.Errorf("hijack: %v", err)
		return
	}
	a := &attachConn{conn: conn, rw: rw, tty: tty, stdin: q.Get("stdin") == "1", stdout: q.Get("stdout") == "1", errs: q.Get("stderr") == "1"}
	f.mu.Lock()
	c.attached = append(c.attached, a)
	f.mu.Unlock()
}

func (f *fakeEngine) wait(w http.ResponseWriter, r *http.Request, c *fakeContainer, cond container.WaitCondition) {
	f.mu.Lock()
	exited, removed, state := c.exited, c.removed, c.state
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	switch {
	case cond == container.WaitConditionRemoved:
		select {
		case <-removed:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	case cond == container.WaitConditionNextExit || state == container.StateRunning:
		select {
		case <-exited:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
	f.mu.Lock()
	code := c.exitCode
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(code)})
}

func (f *fakeEngine) logs(w http.ResponseWriter, c *fakeContainer, q url.Values) {
	f.mu.Lock()
	lines := slices.Clone(c.logs)
	tty := c.cfg.Tty
	f.mu.Unlock()
	if n, err := strconv.Atoi(q.Get("tail")); err == nil && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	w.WriteHeader(http.StatusOK)
	for _, l := range lines {
		if (l.stream == 1 && q.Get("stdout") == "1") || (l.stream == 2 && q.Get("stderr") == "1") {
			writeFrame(w, l.stream, l.text, tty)
		}
	}
}
