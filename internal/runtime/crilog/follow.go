package crilog

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ReadOptions select what ReadFile sends.
type ReadOptions struct {
	// Tail, when positive, starts at the last Tail lines of the file
	// (entries, not joined lines); zero or negative reads everything.
	Tail int
	// Follow keeps reading as the file grows until ctx ends or Exited is
	// closed and everything written before has been read.
	Follow bool
	// Exited is closed by the caller once the container has exited (the
	// log is complete). Nil means never.
	Exited <-chan struct{}
	// Poll is how often Follow looks at the file when inotify cannot tell
	// it (default 250ms); inotify wakes it sooner.
	Poll time.Duration
}

// ReadFile sends the entries of the log at path to fn, in order, until the
// end of the file, or with Follow until ctx ends or the container exited
// and the log was read to its end. An error from fn stops it and is
// returned. Entry contents are only valid during the call to fn.
func ReadFile(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if opts.Tail > 0 {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		off, err := TailOffset(f, fi.Size(), opts.Tail)
		if err != nil {
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	var changed <-chan struct{}
	if opts.Follow {
		if w, err := watch(path); err == nil {
			defer w.Close()
			changed = w.c
		}
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	r := NewReader(f)
	lastPass := false
	for {
		e, err := r.Next()
		if err == nil {
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !opts.Follow || lastPass {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opts.Exited:
			lastPass = true // read what was written before the exit, then stop
		case <-changed:
		case <-time.After(poll):
		}
	}
}

// watcher signals on c when the watched file was written to.
type watcher struct {
	f *os.File
	c chan struct{}
}

func watch(path string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), c: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := w.f.Read(buf); err != nil {
				return // closed
			}
			select {
			case w.c <- struct{}{}:
			default:
			}
		}
	}()
	return w, nil
}

// Close stops the watcher.
func (w *watcher) Close() error { return w.f.Close() }
