package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// Attach connects s to the container's stdio: live output from now on
// (the log has what came before), and input when the container was
// started with OpenStdin. It returns nil when the container's output ends
// (it exited) or — like Docker — when s.Stdin ends, unless the container
// is StdinOnce without a terminal, in which case its stdin is closed and
// the output keeps streaming. It returns ctx's error when ctx ends. The
// goroutine copying s.Stdin may stay blocked in its Read until the
// caller closes it. errdefs.ErrConflict when the container does not run.
func (r *Runtime) Attach(ctx context.Context, id string, s Streams) error {
	c, err := r.dial(ctx, id)
	if err != nil {
		return notRunning(id, err)
	}
	defer c.Close()
	req := wire.Request{Op: wire.OpAttach, Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil}
	if _, err := r.roundTrip(ctx, id, c, req); err != nil {
		return notRunning(id, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	fw := &frameWriter{c: c}
	if s.Stdin != nil {
		go fw.copyStdin(s.Stdin)
	}
	_, err = readOutput(c, s, false)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Exec runs req.Process in the running container, streams its stdio and
// returns its exit code. When ctx ends the streams are cut and Exec
// returns ctx's error; the process keeps running.
func (r *Runtime) Exec(ctx context.Context, id string, req ExecRequest) (exitCode int, err error) {
	c, err := r.dial(ctx, id)
	if err != nil {
		return 0, notRunning(id, err)
	}
	defer c.Close()
	process := req.Process
	s := req.Streams
	wreq := wire.Request{
		Op: wire.OpExec, ExecID: req.ExecID, Process: &process,
		Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil,
	}
	resp, err := r.roundTrip(ctx, id, c, wreq)
	if err != nil {
		return 0, notRunning(id, err)
	}
	if req.Started != nil {
		req.Started(resp.Pid)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	fw := &frameWriter{c: c}
	if s.Stdin != nil {
		go fw.copyStdin(s.Stdin)
	}
	done := make(chan struct{})
	defer close(done)
	if req.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-req.Resize:
					if !ok {
						return
					}
					if fw.writeJSON(wire.KindResize, wire.Size{Width: sz[0], Height: sz[1]}) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	exit, err := readOutput(c, s, true)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	if exit == nil {
		return 0, fmt.Errorf("exec in container %q: the shim ended the stream without an exit code: %w", id, errdefs.ErrUnavailable)
	}
	return exit.Code, nil
}

// readOutput copies output frames to s until the stream ends; for an exec
// it returns the content of the KindExit frame that ends it.
func readOutput(c net.Conn, s Streams, exec bool) (*wire.Exit, error) {
	buf := make([]byte, 32<<10)
	for {
		k, payload, err := wire.ReadFrame(c, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil, nil
			}
			return nil, err
		}
		switch k {
		case wire.KindStdout:
			if s.Stdout != nil {
				if _, err := s.Stdout.Write(payload); err != nil {
					return nil, err
				}
			}
		case wire.KindStderr:
			if s.Stderr != nil {
				if _, err := s.Stderr.Write(payload); err != nil {
					return nil, err
				}
			}
		case wire.KindExit:
			if exec {
				var e wire.Exit
				if err := json.Unmarshal(payload, &e); err != nil {
					return nil, err
				}
				return &e, nil
			}
		}
	}
}

// frameWriter serializes the client's frames on a connection.
type frameWriter struct {
	mu sync.Mutex
	c  net.Conn
}

func (w *frameWriter) write(k wire.Kind, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return wire.WriteFrame(w.c, k, p)
}

func (w *frameWriter) writeJSON(k wire.Kind, v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return wire.WriteJSON(w.c, k, v)
}

// copyStdin sends in as stdin frames, then its end.
func (w *frameWriter) copyStdin(in io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if w.write(wire.KindStdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			_ = w.write(wire.KindCloseStdin, nil)
			return
		}
	}
}
