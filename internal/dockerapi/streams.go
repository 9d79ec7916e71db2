package dockerapi

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/container"
	"skiff.dev/skiff/internal/errdefs"
)

// goSafe runs fn in a goroutine and delivers its error; a panic in fn
// (a Backend bug) becomes an error instead of killing the process.
func (s *Server) goSafe(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in backend call", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				ch <- fmt.Errorf("internal error: %v", v)
			}
		}()
		ch <- fn()
	}()
	return ch
}

// muxWriter writes one stream of Docker's multiplexed format: each Write
// is a frame with an 8-byte header (stream, 0, 0, 0, big-endian length).
// Writers for the streams of one connection share mu.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
}

func newMuxWriters(w io.Writer) (stdout, stderr *muxWriter) {
	mu := new(sync.Mutex)
	return &muxWriter{mu: mu, w: w, stream: stdcopy.Stdout}, &muxWriter{mu: mu, w: w, stream: stdcopy.Stderr}
}

func (m *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), 1<<20)]
		frame := make([]byte, 8+len(chunk))
		frame[0] = byte(m.stream)
		binary.BigEndian.PutUint32(frame[4:], uint32(len(chunk)))
		copy(frame[8:], chunk)
		if _, err := m.w.Write(frame); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// systemError writes a frame the client's stdcopy.StdCopy returns as an
// error.
func systemError(w io.Writer, err error) {
	m := &muxWriter{mu: new(sync.Mutex), w: w, stream: stdcopy.Systemerr}
	_, _ = m.Write([]byte("Error grabbing logs: " + errdefs.Message(err)))
}

// streamContentType is the media type of a container's output stream:
// raw for a TTY (and for clients before API 1.42), multiplexed otherwise.
func streamContentType(tty bool, v apiVersion) string {
	if tty || !v.atLeast("1.42") {
		return types.MediaTypeRawStream
	}
	return types.MediaTypeMultiplexedStream
}

// logTimeFormat is RFC 3339 with fixed-width nanoseconds, as dockerd
// prints log timestamps.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	opts := LogsOptions{Stdout: q.flag("stdout"), Stderr: q.flag("stderr"), Follow: q.flag("follow"), Tail: q.get("tail")}
	if !opts.Stdout && !opts.Stderr {
		return invalidf("you must choose at least one stream")
	}
	if opts.Since, err = parseUnixTime(q.get("since")); err != nil {
		return err
	}
	if u := q.get("until"); u != "0" {
		if opts.Until, err = parseUnixTime(u); err != nil {
			return err
		}
	}
	switch opts.Tail {
	case "", "all":
		opts.Tail = "all"
	default:
		if n, err := strconv.Atoi(opts.Tail); err != nil || n < 0 {
			return invalidf("invalid value for \"tail\": %q is neither \"all\" nor a number of lines", opts.Tail)
		}
	}
	timestamps := q.flag("timestamps")
	name := p.get("name")

	// The TTY decides the format, and a missing container must be a 404
	// before the 200 goes out.
	c, err := s.b.ContainerInspect(r.Context(), name, false)
	if err != nil {
		return err
	}
	tty := c.Config != nil && c.Config.Tty
	ctx, cancel := streamContext(r)
	defer cancel()

	w.Header().Set("Content-Type", streamContentType(tty, p.version))
	w.WriteHeader(http.StatusOK)
	flush(w)
	stdout, stderr := io.Writer(w), io.Writer(w)
	if !tty {
		stdout, stderr = newMuxWriters(w)
	}
	err = s.b.ContainerLogs(ctx, name, opts, func(e LogEntry) error {
		dst := stdout
		switch e.Stream {
		case "stderr":
			if !opts.Stderr {
				return nil
			}
			dst = stderr
		default:
			if !opts.Stdout {
				return nil
			}
		}
		line := e.Line
		if timestamps {
			line = append([]byte(e.Time.UTC().Format(logTimeFormat)+" "), line...)
		}
		if _, err := dst.Write(line); err != nil {
			return err
		}
		if opts.Follow {
			flush(w)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil && !tty {
		systemError(w, err)
	}
	return nil
}

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	stream := q.flagOr("stream", true)
	oneShot := p.version.atLeast("1.41") && q.flag("one-shot")
	name := p.get("name")
	ctx, cancel := streamContext(r)
	defer cancel()

	prev, err := s.b.ContainerStats(ctx, name)
	if err != nil {
		return err
	}
	next := func() (container.StatsResponse, error) {
		select {
		case <-time.After(s.statsInterval):
		case <-ctx.Done():
			return container.StatsResponse{}, ctx.Err()
		}
		st, err := s.b.ContainerStats(ctx, name)
		if err != nil {
			return st, err
		}
		st.PreCPUStats, st.PreRead = prev.CPUStats, prev.Read
		prev = st
		return st, nil
	}
	if !stream {
		st := prev
		if !oneShot {
			// Two samples, so the client can compute a CPU percentage.
			if st, err = next(); err != nil {
				return err
			}
		}
		writeJSON(w, http.StatusOK, &st)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	st := prev
	for {
		if err := enc.Encode(&st); err != nil {
			return err
		}
		flush(w)
		if st, err = next(); err != nil {
			return nil // the container went away, or the client did
		}
	}
}

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	cond := container.WaitConditionNotRunning
	legacy := !p.version.atLeast("1.30")
	if c := q.get("condition"); c != "" && !legacy {
		switch container.WaitCondition(c) {
		case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
			cond = container.WaitCondition(c)
		default:
			return invalidf("invalid condition: %q", c)
		}
	}
	ctx, cancel := streamContext(r)
	defer cancel()

	ready := make(chan struct{})
	var resp container.WaitResponse
	done := s.goSafe(func() error {
		var err error
		resp, err = s.b.ContainerWait(ctx, p.get("name"), cond, ready)
		return err
	})
	readyTimer := time.NewTimer(s.readyGrace)
	defer readyTimer.Stop()
	select {
	case <-ready:
	case <-readyTimer.C:
		s.log.Warn("the backend did not report the wait ready; answering anyway", "container", p.get("name"), "waited", s.readyGrace)
	case err := <-done:
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, &resp)
		return nil
	}
	// Registered: API >= 1.30 clients get the headers now and the body
	// when the condition is met.
	w.Header().Set("Content-Type", "application/json")
	if !legacy {
		w.WriteHeader(http.StatusOK)
		flush(w)
	}
	if err := <-done; err != nil {
		if !legacy && r.Context().Err() == nil {
			resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: errdefs.Message(err)}}
		} else {
			return err
		}
	}
	return json.NewEncoder(w).Encode(&resp)
}
