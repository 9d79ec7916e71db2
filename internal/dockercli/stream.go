package dockercli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/term"
)

// defaultDetachKeys are ctrl-p ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// streamer copies between the local streams and a hijacked attach or
// exec connection. in nil means stdin is not attached; out/errOut nil
// means that stream is not wanted.
type streamer struct {
	in          io.Reader
	out, errOut io.Writer
	tty         bool
	detachKeys  string
	resp        client.HijackedResponse
}

// startStreaming streams a container's attached stdio in the background;
// the channel gets the result once output ends (or ctx ends, or the user
// detaches: then it is a term.EscapeError).
func (c *cli) startStreaming(ctx context.Context, resp client.HijackedResponse, config *container.Config, detachKeys string) <-chan error {
	s := &streamer{tty: config.Tty, detachKeys: detachKeys, resp: resp}
	if config.AttachStdin {
		s.in = c.in()
	}
	if config.AttachStdout {
		s.out = c.out()
	}
	if config.AttachStderr {
		s.errOut = c.err()
		if config.Tty {
			s.errOut = c.out()
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.stream(ctx) }()
	return done
}

// stream runs until output ends, the user detaches or ctx ends. With a
// TTY and a terminal on stdin the terminal is put in raw mode meanwhile
// and the detach keys are watched for.
func (s *streamer) stream(ctx context.Context) error {
	restore := s.setupInput()
	defer restore()

	var outputDone chan error
	if s.out != nil || s.errOut != nil {
		outputDone = make(chan error, 1)
		go func() {
			var err error
			if s.tty {
				_, err = io.Copy(orDiscard(s.out), s.resp.Reader)
				restore() // give the terminal back as soon as output ends
			} else {
				_, err = stdcopy.StdCopy(orDiscard(s.out), orDiscard(s.errOut), s.resp.Reader)
			}
			outputDone <- err
		}()
	}

	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if s.in != nil {
			_, err := io.Copy(s.resp.Conn, s.in)
			restore()
			if _, ok := err.(term.EscapeError); ok {
				detached <- err
				return
			}
			if err != nil {
				slog.Debug("sending stdin", "component", "dockercli", "err", err)
			}
		}
		if err := s.resp.CloseWrite(); err != nil {
			slog.Debug("closing stdin", "component", "dockercli", "err", err)
		}
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone == nil {
			return nil
		}
		select {
		case err := <-outputDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setupInput puts a terminal stdin into raw mode for a TTY session and
// wraps stdin to catch the detach keys. The returned restore may be called
// more than once.
func (s *streamer) setupInput() (restore func()) {
	if s.in == nil || !s.tty {
		return func() {}
	}
	keys := defaultDetachKeys
	if s.detachKeys != "" {
		if k, err := term.ToBytes(s.detachKeys); err == nil {
			keys = k
		} else {
			slog.Warn("invalid detach keys, using ctrl-p,ctrl-q", "component", "dockercli", "err", err)
		}
	}
	fd, isTerm := terminalFd(s.in)
	s.in = term.NewEscapeProxy(s.in, keys)
	if !isTerm {
		return func() {}
	}
	state, err := term.SetRawTerminal(fd)
	if err != nil {
		slog.Warn("cannot put the terminal in raw mode", "component", "dockercli", "err", err)
		return func() {}
	}
	return sync.OnceFunc(func() { _ = term.RestoreTerminal(fd, state) })
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ttySize is the size of the terminal on stdout, if it is one.
func (c *cli) ttySize() (height, width uint, ok bool) {
	fd, isTerm := terminalFd(c.out())
	if !isTerm {
		return 0, 0, false
	}
	ws, err := term.GetWinsize(fd)
	if err != nil || ws.Height == 0 && ws.Width == 0 {
		return 0, 0, false
	}
	return uint(ws.Height), uint(ws.Width), true
}

// monitorTTYSize gives the container's TTY the size of ours now and each
// time the window changes (SIGWINCH), until ctx ends or stop is called.
func (c *cli) monitorTTYSize(ctx context.Context, resize func(h, w uint) error) (stop func()) {
	apply := func() {
		if h, w, ok := c.ttySize(); ok {
			if err := resize(h, w); err != nil {
				slog.Debug("resizing the tty", "component", "dockercli", "err", err)
			}
		}
	}
	apply()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-winch:
				apply()
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		cancel()
	}
}

// proxiedSignals are the signals forwarded to the container (--sig-proxy).
var proxiedSignals = map[os.Signal]string{
	syscall.SIGINT:  "SIGINT",
	syscall.SIGTERM: "SIGTERM",
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2",
}

// forwardSignals sends the signals this process receives to the
// container until stop is called.
func forwardSignals(ctx context.Context, api *client.Client, id string) (stop func()) {
	sigc := make(chan os.Signal, 16)
	sigs := make([]os.Signal, 0, len(proxiedSignals))
	for s := range proxiedSignals {
		sigs = append(sigs, s)
	}
	signal.Notify(sigc, sigs...)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case s := <-sigc:
				if _, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: proxiedSignals[s]}); err != nil {
					slog.Debug("forwarding a signal", "component", "dockercli", "signal", s, "err", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigc)
		cancel()
	}
}
