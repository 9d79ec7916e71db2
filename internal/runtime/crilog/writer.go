// Package crilog writes and reads container logs in the CRI log format
// that kubelet and containerd use:
//
//	2016-10-06T00:17:09.669794202Z stdout F hello
//
// one entry per line: an RFC 3339 timestamp with nanoseconds, the stream
// ("stdout" or "stderr"), a tag ("F" for a full line, "P" for a part of
// one) and the content without its newline.
//
// Writing follows containerd's CRI plugin (internal/cri/io/logger.go,
// redirectLogs) so that tools reading either produce the same thing:
//
//   - a line longer than MaxLineSize is split into MaxLineSize pieces
//     tagged P, and its last piece is tagged F;
//   - a "\r\n" line ending is stripped like "\n" (TTY output);
//   - output that ends without a newline (the stream reaches EOF, see
//     StreamWriter.Close) is written as one last entry tagged P — a
//     reader then knows the program did not end its last line;
//   - timestamps are taken when the line is complete (UTC here).
//
// The container shim writes with Writer; the engine reads with Reader and
// Follow. Any package may import it: it depends on the standard library
// and x/sys only.
package crilog

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Stream names.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// MaxLineSize is the longest content of one entry; longer lines are split
// (containerd's default max_container_log_line_size).
const MaxLineSize = 16 * 1024

// Writer writes entries of several streams to one file. Each entry is one
// Write call on the underlying writer, so entries of different streams
// never interleave.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	// Now returns the time stamped on an entry; time.Now when nil.
	Now func() time.Time
}

// NewWriter returns a Writer appending entries to w (typically a file
// opened with O_APPEND).
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Stream returns a writer for one stream's raw output; name is Stdout or
// Stderr. A StreamWriter is not safe for concurrent use; different
// streams of one Writer are.
func (w *Writer) Stream(name string) *StreamWriter {
	return &StreamWriter{w: w, name: name}
}

// writeEntry formats and writes one entry.
func (w *Writer) writeEntry(stream string, partial bool, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	w.buf = AppendEntry(w.buf[:0], Entry{Time: now(), Stream: stream, Partial: partial, Content: content})
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > 2*MaxLineSize {
		w.buf = nil // do not keep a huge buffer around
	}
	return err
}

// AppendEntry appends e in the CRI format, with its newline, to b.
func AppendEntry(b []byte, e Entry) []byte {
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, e.Stream...)
	if e.Partial {
		b = append(b, " P "...)
	} else {
		b = append(b, " F "...)
	}
	b = append(b, e.Content...)
	return append(b, '\n')
}

// StreamWriter turns one stream's raw bytes into entries.
type StreamWriter struct {
	w    *Writer
	name string
	line []byte // the current line so far (never more than MaxLineSize)
	err  error  // the first write error, reported by Close
}

// Write buffers p and writes an entry for every line it completes. It
// never fails: a container's output must be drained even when the log
// cannot be written; the first error is returned by Close.
func (s *StreamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			break
		}
		switch {
		case i > 0 && p[i-1] == '\r':
			s.add(p[:i-1])
		case i == 0 && len(s.line) > 0 && s.line[len(s.line)-1] == '\r':
			s.line = s.line[:len(s.line)-1] // the \r came with the previous write
		default:
			s.add(p[:i])
		}
		p = p[i+1:]
		s.emit(false, s.line)
		s.line = s.line[:0]
	}
	return n, nil
}

// add appends p to the current line, writing a P entry each time the
// line grows past MaxLineSize. Like containerd, a line of exactly
// MaxLineSize bytes stays whole: it is split only once it is longer.
func (s *StreamWriter) add(p []byte) {
	for len(s.line)+len(p) > MaxLineSize {
		k := MaxLineSize - len(s.line)
		if len(s.line) == 0 {
			s.emit(true, p[:k]) // no copy when the piece comes whole from p
		} else {
			s.line = append(s.line, p[:k]...)
			s.emit(true, s.line)
			s.line = s.line[:0]
		}
		p = p[k:]
	}
	s.line = append(s.line, p...)
	if cap(s.line) > MaxLineSize && len(s.line) == 0 {
		s.line = nil
	}
}

func (s *StreamWriter) emit(partial bool, content []byte) {
	if err := s.w.writeEntry(s.name, partial, content); err != nil && s.err == nil {
		s.err = err
	}
}

// Close writes what is left of an unterminated last line as a P entry
// (the stream ended without a newline) and returns the first write error.
func (s *StreamWriter) Close() error {
	if len(s.line) > 0 {
		s.emit(true, s.line)
		s.line = nil
	}
	return s.err
}
