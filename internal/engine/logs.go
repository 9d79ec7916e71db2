package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/crilog"
)

// ContainerLogs sends the container's log entries to fn.
func (e *Engine) ContainerLogs(ctx context.Context, nameOrID string, opts dockerapi.LogsOptions, fn func(dockerapi.LogEntry) error) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	ro := crilog.ReadOptions{Follow: opts.Follow}
	if opts.Tail != "" && opts.Tail != "all" {
		n, err := strconv.Atoi(opts.Tail)
		if err != nil {
			return fmt.Errorf("invalid tail %q: %w", opts.Tail, errdefs.ErrInvalid)
		}
		if n == 0 && !opts.Follow {
			return nil
		}
		ro.Tail = n
		if n == 0 {
			ro.Tail = -1 // follow from the end: nothing old
		}
	}
	if opts.Follow {
		ro.Exited = e.stopped(c)
	}
	path := e.ctrs.path(c.rec.ID, "container.log")
	err = crilog.ReadFile(ctx, path, ro, func(en crilog.Entry) error {
		if (en.Stream == crilog.Stdout && !opts.Stdout) || (en.Stream == crilog.Stderr && !opts.Stderr) {
			return nil
		}
		if (!opts.Since.IsZero() && en.Time.Before(opts.Since)) || (!opts.Until.IsZero() && en.Time.After(opts.Until)) {
			return nil
		}
		line := en.Content
		if !en.Partial {
			line = append(line, '\n')
		}
		return fn(dockerapi.LogEntry{Stream: en.Stream, Time: en.Time, Line: line})
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started: no log yet
	}
	return err
}

// stopped returns a channel closed once c is not running (nor about to
// restart).
func (e *Engine) stopped(c *ctr) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			c.mu.Lock()
			live, changed := c.rec.State.Running || c.rec.State.Restarting, c.changed
			c.mu.Unlock()
			if !live {
				return
			}
			select {
			case <-changed:
			case <-e.ctx.Done():
				return
			}
		}
	}()
	return ch
}

// ContainerAttach connects streams to a container. Attaching before the
// container starts (docker run's order) waits for the start; the runtime
// then holds the program until the attach connects, so no output is lost.
func (e *Engine) ContainerAttach(ctx context.Context, nameOrID string, opts dockerapi.AttachOptions) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.rec.State.Running
	var started chan struct{}
	if !running {
		if c.rec.State.Status != "created" && !opts.Logs {
			c.mu.Unlock()
			return fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
		}
		started = make(chan struct{})
		c.attachers = append(c.attachers, started)
	}
	id, tty := c.rec.ID, c.rec.Config.Tty
	c.mu.Unlock()
	if opts.Ready != nil {
		close(opts.Ready)
	}

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if tty {
		stderr = stdout
	}
	if opts.Logs && running {
		if err := e.replay(ctx, c, stdout, stderr, false); err != nil {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	if started != nil {
		select {
		case <-started:
		case <-ctx.Done():
			e.dropAttacher(c, started)
			return ctx.Err()
		}
		// The runtime holds the program until this attach connects.
	}
	err = e.opts.Runtime.Attach(ctx, id, runtime.Streams{Stdin: opts.Stdin, Stdout: stdout, Stderr: stderr})
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrConflict) {
		return nil // it exited meanwhile
	}
	return err
}

// dropAttacher forgets a pending attach whose client went away before the
// container started.
func (e *Engine) dropAttacher(c *ctr, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.attachers {
		if a == ch {
			c.attachers = append(c.attachers[:i], c.attachers[i+1:]...)
			return
		}
	}
}

// replay copies the log to stdout/stderr, following it while the
// container runs when follow is set.
func (e *Engine) replay(ctx context.Context, c *ctr, stdout, stderr io.Writer, follow bool) error {
	ro := crilog.ReadOptions{Follow: follow}
	if follow {
		ro.Exited = e.stopped(c)
	}
	return writeLog(ctx, e.ctrs.path(c.rec.ID, "container.log"), ro, stdout, stderr)
}

// writeLog writes the entries of the log at path to stdout and stderr as
// the program wrote them. A missing log is empty.
func writeLog(ctx context.Context, path string, ro crilog.ReadOptions, stdout, stderr io.Writer) error {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	err := crilog.ReadFile(ctx, path, ro, func(en crilog.Entry) error {
		w := stdout
		if en.Stream == crilog.Stderr {
			w = stderr
		}
		line := en.Content
		if !en.Partial {
			line = append(line, '\n')
		}
		_, err := w.Write(line)
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ContainerResize resizes the container's TTY.
func (e *Engine) ContainerResize(ctx context.Context, nameOrID string, height, width uint) error {
	c, err := e.runningCtr(nameOrID)
	if err != nil {
		return err
	}
	return e.opts.Runtime.Resize(ctx, c.rec.ID, uint16(width), uint16(height))
}

// shellJoin renders argv for messages.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
