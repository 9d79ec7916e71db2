package shim

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// execDrain bounds how long an exec's output is awaited after the process
// exited (a background child may hold its pipes).
const execDrain = 2 * time.Second

// exec runs another process in the container and streams its stdio on c;
// the last frame is its exit code. The process keeps running if the
// client leaves.
func (s *shim) exec(c *net.UnixConn, req wire.Request) {
	if req.Process == nil || len(req.Process.Args) == 0 {
		reply(c, nil, fmt.Errorf("exec without a process: %w", errdefs.ErrInvalid))
		return
	}
	if err := s.addExec(req.ExecID); err != nil {
		reply(c, nil, err)
		return
	}
	defer s.removeExec(req.ExecID)

	p, err := newProcess(req.Process)
	if err != nil {
		reply(c, nil, err)
		return
	}
	tty := req.Process.Terminal
	sio, err := newStdio(p, tty, req.Stdin, req.Stdout || tty, req.Stderr && !tty)
	if err != nil {
		reply(c, nil, err)
		return
	}
	err = s.container.Run(p)
	sio.closeChildEnds()
	if err != nil {
		sio.closeParentEnds()
		reply(c, nil, startError(s.o.id, err))
		return
	}
	stdin, stdout, stderr := sio.stdin, sio.stdout, sio.stderr
	var console *os.File
	if tty {
		if console, err = sio.receiveConsole(); err != nil {
			_ = p.Signal(os.Kill)
			_, _ = p.Wait()
			reply(c, nil, err)
			return
		}
		stdout = console
		if req.Stdin {
			stdin = console
		}
	}
	pid, _ := p.Pid()
	reply(c, &wire.Response{Pid: pid}, nil)

	// Output: frames to the client while it listens; drained regardless.
	var wmu sync.Mutex
	clientGone := false
	emit := func(frame []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		if clientGone {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeDeadline))
		if _, err := c.Write(frame); err != nil {
			clientGone = true
		}
	}
	var pumps sync.WaitGroup
	exited := make(chan struct{})
	if console != nil {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			pumpConsole(console, exited, emit)
		}()
	} else {
		for _, o := range []struct {
			f *os.File
			k wire.Kind
		}{{stdout, wire.KindStdout}, {stderr, wire.KindStderr}} {
			if o.f == nil {
				continue
			}
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				pump(o.f, o.k, emit)
			}()
		}
	}

	// Input and resizes from the client.
	var inMu sync.Mutex
	closeIn := func() {
		inMu.Lock()
		defer inMu.Unlock()
		if stdin != nil && stdin != console {
			stdin.Close()
		}
		if stdin != console {
			stdin = nil
		}
	}
	go func() {
		var buf []byte
		for {
			k, payload, err := wire.ReadFrame(c, buf)
			if err != nil {
				closeIn()
				return
			}
			buf = payload[:0]
			switch k {
			case wire.KindStdin:
				inMu.Lock()
				if stdin != nil {
					_, _ = stdin.Write(payload)
				}
				inMu.Unlock()
			case wire.KindCloseStdin:
				closeIn()
			case wire.KindResize:
				if sz, err := decodeSize(payload); err == nil && console != nil {
					_ = resize(console, sz)
				}
			}
		}
	}()

	st, err := p.Wait()
	close(exited)
	code := exitCode(st, err)
	drained := make(chan struct{})
	go func() {
		pumps.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(execDrain):
	}
	wmu.Lock()
	if !clientGone {
		_ = wire.WriteJSON(c, wire.KindExit, wire.Exit{Code: code})
	}
	clientGone = true
	wmu.Unlock()
	closeIn()
	go func() { // let the pumps finish on their own, then release the fds
		<-drained
		for _, f := range []*os.File{stdout, stderr, console} {
			if f != nil {
				f.Close()
			}
		}
	}()
}

func (s *shim) addExec(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exit != nil {
		return fmt.Errorf("container %q is not running: %w", s.o.id, errdefs.ErrConflict)
	}
	if id != "" {
		if s.execs[id] {
			return fmt.Errorf("exec %q is already running: %w", id, errdefs.ErrAlreadyExists)
		}
		s.execs[id] = true
	}
	return nil
}

func (s *shim) removeExec(id string) {
	s.mu.Lock()
	delete(s.execs, id)
	s.mu.Unlock()
}

func decodeSize(b []byte) (wire.Size, error) {
	var sz wire.Size
	err := json.Unmarshal(b, &sz)
	return sz, err
}
