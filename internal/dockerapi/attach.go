package dockerapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"
)

// containerAttach hijacks the connection and connects it to the
// container's stdio. The stream starts (101 or 200) only once the Backend
// has attached, so a client that attaches and then starts the container
// (`docker run`) sees all of its output.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	name := p.get("name")
	c, err := s.b.ContainerInspect(r.Context(), name, false)
	if err != nil {
		return err
	}
	tty := c.Config != nil && c.Config.Tty
	contentType := "application/vnd.docker.raw-stream"
	if r.Header.Get("Upgrade") != "" {
		contentType = streamContentType(tty, p.version)
	}

	h, err := s.hijack(w, r)
	if err != nil {
		return err
	}
	defer h.close()
	ctx, cancel := hijackedContext(r, h)
	defer cancel()

	g := &gate{w: h.conn, start: func() error { return h.writeHeader(contentType) }}
	var stdout, stderr io.Writer = g, g
	if !tty {
		stdout, stderr = newMuxWriters(g)
	}
	ready := make(chan struct{})
	opts := AttachOptions{Logs: q.flag("logs"), Stream: q.flag("stream"), DetachKeys: q.get("detachKeys"), Ready: ready}
	if q.flag("stdin") {
		opts.Stdin = h.in
	}
	if q.flag("stdout") {
		opts.Stdout = stdout
	}
	if q.flag("stderr") {
		opts.Stderr = stderr
	}
	done := s.goSafe(func() error { return s.b.ContainerAttach(ctx, name, opts) })

	readyTimer := time.NewTimer(s.readyGrace)
	defer readyTimer.Stop()
	select {
	case <-ready:
	case <-readyTimer.C:
		s.log.Warn("the backend did not report the attach ready; starting the stream anyway", "container", name, "waited", s.readyGrace)
	case err := <-done:
		if err != nil && !g.isOpen() {
			h.writeError(err)
			return nil
		}
		_ = g.open() // attached and done already (logs only, say)
		return nil
	}
	if err := g.open(); err != nil {
		return nil // the client is gone; cancel ends the attach
	}
	if err := <-done; err != nil {
		s.log.Debug("attach ended", "container", name, "error", err)
	}
	return nil
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request, p params) error {
	var req container.ExecCreateRequest
	// Clients before API 1.52 send Detach; it never meant anything here.
	if _, err := readJSON(w, r, &req, "Detach"); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return invalidf("No exec command specified")
	}
	if !p.version.atLeast("1.42") {
		req.ConsoleSize = nil
	}
	id, err := s.b.ExecCreate(r.Context(), p.get("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &container.ExecCreateResponse{ID: id})
	return nil
}

// execStart runs an exec process: detached, it answers once the process
// started; otherwise it hijacks the connection for the process's stdio
// and ends the stream when the process exits (its exit code is then in
// ExecInspect).
func (s *Server) execStart(w http.ResponseWriter, r *http.Request, p params) error {
	var req container.ExecStartRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	id := p.get("id")
	ins, err := s.b.ExecInspect(r.Context(), id)
	if err != nil {
		return err
	}
	if req.Detach {
		if err := s.b.ExecStart(context.WithoutCancel(r.Context()), id, ExecStartOptions{Detach: true}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}

	contentType := "application/vnd.docker.raw-stream"
	if r.Header.Get("Upgrade") != "" {
		contentType = streamContentType(req.Tty, p.version)
	}
	h, err := s.hijack(w, r)
	if err != nil {
		return err
	}
	defer h.close()
	if err := h.writeHeader(contentType); err != nil {
		return nil
	}
	ctx, cancel := hijackedContext(r, h)
	defer cancel()

	var stdout, stderr io.Writer = h.conn, h.conn
	if !req.Tty {
		stdout, stderr = newMuxWriters(h.conn)
	}
	opts := ExecStartOptions{Stdout: stdout, Stderr: stderr}
	if ins.OpenStdin {
		opts.Stdin = h.in
	}
	if err := <-s.goSafe(func() error { return s.b.ExecStart(ctx, id, opts) }); err != nil && ctx.Err() == nil {
		// Like dockerd: the stream has started, so the error goes to the
		// user in it.
		_, _ = fmt.Fprintf(stdout, "%v\r\n", err)
	}
	return nil
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request, p params) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.ExecResize(r.Context(), p.get("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request, p params) error {
	ins, err := s.b.ExecInspect(r.Context(), p.get("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &ins)
	return nil
}
