package dockerapitest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/internal/dockerapi"
)

// attacher is one attached client's output streams; failed closes when
// writing to it fails (the client went away).
type attacher struct {
	stdout, stderr io.Writer
	failed         chan struct{}
	once           sync.Once
}

func (a *attacher) fail() { a.once.Do(func() { close(a.failed) }) }

// outWriter is a run's stdout or stderr: it appends to the log and copies
// to attached clients.
type outWriter struct {
	b      *Backend
	c      *fakeContainer
	stream string
}

func (w *outWriter) Write(p []byte) (int, error) {
	line := slices.Clone(p)
	w.b.mu.Lock()
	w.c.logs = append(w.c.logs, dockerapi.LogEntry{Stream: w.stream, Time: time.Now(), Line: line})
	w.c.notify()
	type target struct {
		a *attacher
		w io.Writer
	}
	var targets []target
	for a := range w.c.attachers {
		dst := a.stdout
		if w.stream == "stderr" {
			dst = a.stderr
		}
		if dst != nil {
			targets = append(targets, target{a, dst})
		}
	}
	w.b.mu.Unlock()
	for _, t := range targets {
		if _, err := t.w.Write(line); err != nil {
			t.a.fail()
		}
	}
	return len(p), nil
}

// ContainerLogs implements dockerapi.Backend.
func (b *Backend) ContainerLogs(ctx context.Context, ref string, opts dockerapi.LogsOptions, fn func(dockerapi.LogEntry) error) error {
	b.mu.Lock()
	c, err := b.container(ref)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	want := func(e dockerapi.LogEntry) bool {
		return (e.Stream == "stdout" && opts.Stdout || e.Stream == "stderr" && opts.Stderr) &&
			(opts.Since.IsZero() || !e.Time.Before(opts.Since)) && (opts.Until.IsZero() || !e.Time.After(opts.Until))
	}
	var first []dockerapi.LogEntry
	for _, e := range c.logs {
		if want(e) {
			first = append(first, e)
		}
	}
	if opts.Tail != "" && opts.Tail != "all" {
		var n int
		if _, err := fmt.Sscanf(opts.Tail, "%d", &n); err == nil && n >= 0 && n < len(first) {
			first = first[len(first)-n:]
		}
	}
	next, notify := len(c.logs), c.logNotify
	b.mu.Unlock()

	for _, e := range first {
		if err := fn(e); err != nil {
			return err
		}
	}
	for opts.Follow {
		b.mu.Lock()
		running := c.state == container.StateRunning && !c.gone
		b.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil
		}
		b.mu.Lock()
		more := slices.Clone(c.logs[next:])
		next, notify = len(c.logs), c.logNotify
		b.mu.Unlock()
		for _, e := range more {
			if !opts.Until.IsZero() && e.Time.After(opts.Until) {
				return nil
			}
			if want(e) {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ContainerAttach implements dockerapi.Backend. Detach keys are not
// recognized.
func (b *Backend) ContainerAttach(ctx context.Context, ref string, opts dockerapi.AttachOptions) error {
	b.mu.Lock()
	c, err := b.container(ref)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	// Attached to a container that is not running, the stream waits for
	// its next run (`docker start -a` attaches first).
	logs := slices.Clone(c.logs)
	a := &attacher{stdout: opts.Stdout, stderr: opts.Stderr, failed: make(chan struct{})}
	if c.config.Tty {
		a.stderr = opts.Stdout
	}
	run, removed := c.runDone, c.removed
	stdin, once := c.stdinW, c.config.StdinOnce
	if opts.Stream {
		c.attachers[a] = struct{}{}
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(c.attachers, a)
		b.mu.Unlock()
	}()
	if opts.Ready != nil {
		close(opts.Ready)
	}
	if opts.Logs {
		for _, e := range logs {
			dst := a.stdout
			if e.Stream == "stderr" {
				dst = a.stderr
			}
			if dst != nil {
				_, _ = dst.Write(e.Line)
			}
		}
	}
	if !opts.Stream {
		return nil
	}
	if opts.Stdin != nil && stdin != nil {
		go func() {
			_, err := io.Copy(stdin, opts.Stdin)
			if err == nil && once {
				_ = stdin.Close()
			}
		}()
	}
	select {
	case <-run:
	case <-removed:
	case <-a.failed:
	case <-ctx.Done():
	}
	return nil
}
