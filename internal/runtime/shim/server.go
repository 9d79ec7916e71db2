package shim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// requestTimeout bounds how long a client may take to send its request.
const requestTimeout = 10 * time.Second

// serve accepts control connections until the listener is closed.
func (s *shim) serve() {
	defer close(s.served)
	for {
		c, err := s.listener.AcceptUnix()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.trim.busy()
		go func() {
			defer s.conns.Done()
			defer s.trim.idle()
			defer c.Close()
			s.handle(c)
		}()
	}
}

func (s *shim) handle(c *net.UnixConn) {
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	var req wire.Request
	if err := wire.ReadJSON(c, wire.KindRequest, &req); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch req.Op {
	case wire.OpState:
		reply(c, s.state(), nil)
	case wire.OpKill:
		reply(c, &wire.Response{}, s.kill(req))
	case wire.OpWait:
		s.wait(c)
	case wire.OpAttach:
		s.attach(c, req)
	case wire.OpResize:
		var err error
		if req.Size == nil {
			err = fmt.Errorf("resize without a size: %w", errdefs.ErrInvalid)
		} else if s.console != nil {
			err = resize(s.console, *req.Size)
		}
		reply(c, &wire.Response{}, err)
	case wire.OpExec:
		s.exec(c, req)
	case wire.OpProcesses:
		pids, err := s.processes()
		reply(c, &wire.Response{Pids: pids}, err)
	case wire.OpStats:
		resp := &wire.Response{}
		var err error
		if err = s.checkRunning(); err == nil {
			var st *libcontainer.Stats
			if st, err = s.container.Stats(); err == nil {
				resp.Stats = st.CgroupStats
			}
		}
		reply(c, resp, err)
	default:
		reply(c, nil, fmt.Errorf("unknown operation %q: %w", req.Op, errdefs.ErrInvalid))
	}
}

// reply writes resp, or err's response when err is set.
func reply(c io.Writer, resp *wire.Response, err error) {
	if err != nil {
		resp = wire.ErrorResponse(err)
	}
	_ = wire.WriteJSON(c, wire.KindResponse, resp)
}

func (s *shim) state() *wire.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &wire.Response{Running: s.exit == nil, Pid: s.pid, Exit: s.exit}
}

func (s *shim) checkRunning() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exit != nil {
		return fmt.Errorf("container %q is not running: %w", s.o.id, errdefs.ErrConflict)
	}
	return nil
}

func (s *shim) kill(req wire.Request) error {
	if err := s.checkRunning(); err != nil {
		return err
	}
	sig := unix.Signal(req.Signal)
	if req.All {
		pids, err := s.container.Processes()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("signal %d to pid %d: %w", sig, pid, err)
			}
		}
		return nil
	}
	if err := s.container.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("container %q is not running: %w", s.o.id, errdefs.ErrConflict)
		}
		return err
	}
	return nil
}

func (s *shim) processes() ([]int, error) {
	if err := s.checkRunning(); err != nil {
		return nil, err
	}
	return s.container.Processes()
}

// wait answers once the init exited and everything was recorded, or
// returns when the client goes away.
func (s *shim) wait(c *net.UnixConn) {
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c)
		close(gone)
	}()
	select {
	case <-s.done:
		reply(c, s.state(), nil)
	case <-gone:
	}
}

// attach streams the init's output to the client, and its input to the
// init when the container keeps stdin open, until the output ends or the
// client leaves (or its stdin ends, see stdinEnded).
func (s *shim) attach(c *net.UnixConn, req wire.Request) {
	if err := s.checkRunning(); err != nil {
		reply(c, nil, err)
		return
	}
	reply(c, &wire.Response{}, nil)
	sub := newSubscriber(c, req.Stdout, req.Stderr)
	if !s.out.add(sub) {
		return // the output ended meanwhile
	}
	if s.o.holdUntilAttach {
		s.release()
	}
	go func() {
		var buf []byte
		for {
			k, payload, err := wire.ReadFrame(c, buf)
			if err != nil {
				if req.Stdin {
					s.stdinEnded(sub)
				}
				s.out.remove(sub)
				return
			}
			buf = payload[:0]
			switch k {
			case wire.KindStdin:
				if req.Stdin {
					s.writeStdin(payload)
				}
			case wire.KindCloseStdin:
				if req.Stdin {
					s.stdinEnded(sub)
				}
			case wire.KindResize:
				if sz, err := decodeSize(payload); err == nil && s.console != nil {
					_ = resize(s.console, sz)
				}
			}
		}
	}()
	<-sub.gone
}

// release lets a held init exec its program (see options.holdUntilAttach).
func (s *shim) release() {
	s.releaseOnce.Do(func() {
		if err := s.container.Exec(); err != nil {
			s.log.Warn("releasing the held init", "err", err)
		}
	})
}

func (s *shim) writeStdin(p []byte) {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin == nil || s.stdinClosed {
		return
	}
	if _, err := s.stdin.Write(p); err != nil {
		s.log.Debug("stdin write", "err", err)
	}
}

// stdinEnded handles the end of an attached client's stdin like Docker:
// for a StdinOnce container without a terminal it closes the container's
// stdin (its output still streams); otherwise it ends that client's
// attach.
func (s *shim) stdinEnded(sub *subscriber) {
	if s.stdin == nil {
		return
	}
	if s.o.stdinOnce && s.console == nil {
		s.closeStdin()
		return
	}
	s.out.remove(sub)
}

func (s *shim) closeStdin() {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin != nil && !s.stdinClosed && s.stdin != s.console {
		s.stdin.Close()
	}
	s.stdinClosed = true
}

// resize sets a terminal's size.
func resize(console *os.File, sz wire.Size) error {
	rc, err := console.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
	if err != nil {
		return err
	}
	return ioErr
}
