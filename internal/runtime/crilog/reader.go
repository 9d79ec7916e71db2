package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Entry is one line of a CRI log.
type Entry struct {
	Time   time.Time
	Stream string // Stdout or Stderr
	// Partial is set for the P tag: the content is not the end of a line
	// (a piece of a long line, or output that ended without a newline).
	Partial bool
	// Content is the text without the newline.
	Content []byte
}

// ErrFormat is wrapped by parse errors.
var ErrFormat = errors.New("not a CRI log line")

// Parse parses one log line, without its newline. Content aliases line.
// The tag may carry more tags after a ':' (reserved by the CRI format);
// only the first one, P or F, is read.
func Parse(line []byte) (Entry, error) {
	var e Entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("%w: no stream", ErrFormat)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("%w: bad time: %v", ErrFormat, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("%w: no tag", ErrFormat)
	}
	switch string(stream) {
	case Stdout:
		e.Stream = Stdout
	case Stderr:
		e.Stream = Stderr
	default:
		return e, fmt.Errorf("%w: unknown stream %q", ErrFormat, stream)
	}
	tags, content, _ := bytes.Cut(rest, []byte{' '}) // "ts stdout F" is an empty line
	first, _, _ := bytes.Cut(tags, []byte{':'})
	switch string(first) {
	case "F":
	case "P":
		e.Partial = true
	default:
		return e, fmt.Errorf("%w: unknown tag %q", ErrFormat, tags)
	}
	e.Time = t
	e.Content = content
	return e, nil
}

// Reader reads entries from a log file as it grows.
type Reader struct {
	r       io.Reader
	buf     []byte // unread bytes are buf[start:end]
	start   int
	end     int
	eof     bool
	partial bool // the last read ended within a line
}

// NewReader returns a Reader of r, starting at r's current offset.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, buf: make([]byte, 4096)} }

// maxLine bounds a log line (a MaxLineSize entry with its header is
// smaller); longer lines are skipped as garbage.
const maxLine = MaxLineSize + 256

// Next returns the next complete entry. At the end of the data it returns
// io.EOF; a line still being written is kept and returned by a later Next
// once its newline has arrived, so Next may be called again after the file
// grew. Lines that do not parse are skipped. The entry's Content is only
// valid until the next call.
func (r *Reader) Next() (Entry, error) {
	for {
		if i := bytes.IndexByte(r.buf[r.start:r.end], '\n'); i >= 0 {
			line := r.buf[r.start : r.start+i]
			r.start += i + 1
			if r.partial { // the tail of an over-long line
				r.partial = false
				continue
			}
			e, err := Parse(line)
			if err != nil {
				continue
			}
			return e, nil
		}
		if err := r.fill(); err != nil {
			return Entry{}, err
		}
	}
}

// fill reads more data, compacting or growing the buffer.
func (r *Reader) fill() error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= maxLine {
			r.end = 0 // drop an over-long line; skip up to its newline
			r.partial = true
		} else {
			nb := make([]byte, min(2*len(r.buf), maxLine))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.EOF // a reader returning 0, nil: treat as the end for now
	}
	return err
}

// TailOffset returns the offset in r (of size bytes) at which its last n
// lines start; 0 when it has n lines or fewer. A trailing line without a
// newline counts as a line.
func TailOffset(r io.ReaderAt, size int64, n int) (int64, error) {
	if n <= 0 {
		return size, nil
	}
	buf := make([]byte, 8192)
	end := size
	// A newline ending the file does not start a line.
	if size > 0 {
		var last [1]byte
		if _, err := r.ReadAt(last[:], size-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end--
		}
	}
	found := 0
	for end > 0 {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				found++
				if found == n {
					return start + int64(i) + 1, nil
				}
			}
		}
		end = start
	}
	return 0, nil
}
