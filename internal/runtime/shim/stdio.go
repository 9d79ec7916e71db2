package shim

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/runtime/crilog"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// stdio is a process's standard streams: pipes, or a terminal whose
// master side arrives on a socket once the process has started.
type stdio struct {
	// Kept by the shim.
	stdin          *os.File // write end; nil: the process reads /dev/null
	stdout, stderr *os.File // read ends; nil: not wanted (/dev/null)
	consoleSocket  *os.File
	// Given to the process, closed once it started.
	child []*os.File
}

// newStdio sets up p's stdio: a terminal when tty (then all streams go
// through it), else a pipe for each wanted stream.
func newStdio(p *libcontainer.Process, tty, in, out, errOut bool) (*stdio, error) {
	s := &stdio{}
	if tty {
		parent, child, err := utils.NewSockPair("console")
		if err != nil {
			return nil, err
		}
		s.consoleSocket = parent
		s.child = append(s.child, child)
		p.ConsoleSocket = child
		return s, nil
	}
	pipe := func(want bool, childReads bool) (parent, child *os.File, err error) {
		if !want {
			return nil, nil, nil
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		if childReads {
			return w, r, nil
		}
		return r, w, nil
	}
	var err error
	var cin, cout, cerr *os.File
	if s.stdin, cin, err = pipe(in, true); err == nil {
		if s.stdout, cout, err = pipe(out, false); err == nil {
			s.stderr, cerr, err = pipe(errOut, false)
		}
	}
	for _, f := range []*os.File{cin, cout, cerr} {
		if f != nil {
			s.child = append(s.child, f)
		}
	}
	if err != nil {
		s.closeChildEnds()
		s.closeParentEnds()
		return nil, err
	}
	// Typed nils must not reach exec.Cmd: a nil *os.File in an io.Reader
	// is not nil.
	if cin != nil {
		p.Stdin = cin
	}
	if cout != nil {
		p.Stdout = cout
	}
	if cerr != nil {
		p.Stderr = cerr
	}
	return s, nil
}

func (s *stdio) closeChildEnds() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

func (s *stdio) closeParentEnds() {
	for _, f := range []*os.File{s.stdin, s.stdout, s.stderr, s.consoleSocket} {
		if f != nil {
			f.Close()
		}
	}
}

// receiveConsole takes the terminal's master side from the started
// process; it then serves as stdin and stdout.
func (s *stdio) receiveConsole() (*os.File, error) {
	defer s.consoleSocket.Close()
	f, err := utils.RecvFile(s.consoleSocket)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that reads wait in the poller, not in a thread.
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "console"), nil
}

// pumpConsole is pump for a terminal's master side. EIO there means that
// no process has the slave side open at the moment, which is not the end
// while the process may still write (containerd's console does the
// same): it ends once exited is closed and a read then finds nothing.
func pumpConsole(r io.Reader, exited <-chan struct{}, emit func(frame []byte)) {
	buf := make([]byte, wire.HeaderSize+pumpBuf)
	buf[0] = byte(wire.KindStdout)
	for {
		n, err := r.Read(buf[wire.HeaderSize:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[4:], uint32(n))
			emit(buf[:wire.HeaderSize+n])
			continue
		}
		if !errors.Is(err, syscall.EIO) {
			return // closed, or a real error
		}
		select {
		case <-exited:
			// One more read returns what the kernel still holds; after
			// that EIO is final.
			for {
				n, _ := r.Read(buf[wire.HeaderSize:])
				if n <= 0 {
					return
				}
				binary.BigEndian.PutUint32(buf[4:], uint32(n))
				emit(buf[:wire.HeaderSize+n])
			}
		case <-time.After(consoleRetry):
		}
	}
}

// consoleRetry is how often a terminal without a slave is read again.
const consoleRetry = 20 * time.Millisecond

// pumpBuf is the read size of an output pump.
const pumpBuf = 8 << 10

// pump reads r until it ends and hands each chunk to emit as a whole
// frame of kind k (header included). Any error ends it; for a terminal
// that is EIO once its last process closed the slave side.
func pump(r io.Reader, k wire.Kind, emit func(frame []byte)) {
	buf := make([]byte, wire.HeaderSize+pumpBuf)
	buf[0] = byte(k)
	for {
		n, err := r.Read(buf[wire.HeaderSize:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[4:], uint32(n))
			emit(buf[:wire.HeaderSize+n])
		}
		if err != nil {
			return // io.EOF, EIO from a terminal, or closed: the end either way
		}
	}
}

// startOutput starts pumping the init's output to the log and to attached
// clients.
func (s *shim) startOutput(sio *stdio) error {
	if sio.consoleSocket != nil {
		c, err := sio.receiveConsole()
		if err != nil {
			return err
		}
		s.console, s.stdin = c, c
		if !s.o.openStdin {
			s.stdin = nil
		}
		lw := s.logw.Stream(crilog.Stdout)
		s.pumps.Add(1)
		go func() {
			defer s.pumps.Done()
			pumpConsole(c, s.initExited, func(frame []byte) {
				lw.Write(frame[wire.HeaderSize:])
				s.out.broadcast(wire.KindStdout, frame)
			})
			s.closeLogStream(lw)
		}()
		return nil
	}
	s.stdin = sio.stdin
	s.startPump(sio.stdout, wire.KindStdout, crilog.Stdout)
	s.startPump(sio.stderr, wire.KindStderr, crilog.Stderr)
	return nil
}

func (s *shim) startPump(r *os.File, k wire.Kind, stream string) {
	lw := s.logw.Stream(stream)
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		defer r.Close()
		pump(r, k, func(frame []byte) {
			lw.Write(frame[wire.HeaderSize:])
			s.out.broadcast(k, frame)
		})
		s.closeLogStream(lw)
	}()
}

// closeLogStream writes the stream's unterminated last line.
func (s *shim) closeLogStream(lw *crilog.StreamWriter) {
	if err := lw.Close(); err != nil {
		s.log.Warn("log write failed", "path", s.o.logPath, "err", err)
	}
}
