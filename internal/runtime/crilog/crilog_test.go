package crilog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)

func fixedWriter(buf *bytes.Buffer) *Writer {
	w := NewWriter(buf)
	w.Now = func() time.Time { return t0 }
	return w
}

func TestStreamWriter(t *testing.T) {
	const ts = "2016-10-06T00:17:09.669794202Z"
	long := strings.Repeat("a", MaxLineSize)
	tests := []struct {
		name   string
		writes []string // written in this order, then Close
		want   string
	}{
		{"one line", []string{"hello\n"}, ts + " stdout F hello\n"},
		{"two lines in one write", []string{"a\nb\n"}, ts + " stdout F a\n" + ts + " stdout F b\n"},
		{"line across writes", []string{"hel", "lo\n"}, ts + " stdout F hello\n"},
		{"empty line", []string{"\n"}, ts + " stdout F \n"},
		{"no final newline", []string{"a\nbc"}, ts + " stdout F a\n" + ts + " stdout P bc\n"},
		{"crlf", []string{"tty\r\n"}, ts + " stdout F tty\n"},
		{"crlf split across writes", []string{"tty\r", "\n"}, ts + " stdout F tty\n"},
		{"lone cr kept", []string{"a\rb\n"}, ts + " stdout F a\rb\n"},
		{"exactly max", []string{long + "\n"}, ts + " stdout F " + long + "\n"},
		{"max plus one", []string{long + "b\n"}, ts + " stdout P " + long + "\n" + ts + " stdout F b\n"},
		{"twice max", []string{long + long + "\n"}, ts + " stdout P " + long + "\n" + ts + " stdout F " + long + "\n"},
		{"max in pieces", []string{long[:100], long[100:], "x\n"}, ts + " stdout P " + long + "\n" + ts + " stdout F x\n"},
		{"max then crlf", []string{long + "\r\n"}, ts + " stdout F " + long + "\n"},
		{"max without newline", []string{long}, ts + " stdout P " + long + "\n"},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := fixedWriter(&buf).Stream(Stdout)
			for _, w := range tt.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", trunc(got), trunc(tt.want))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-100:]
	}
	return s
}

func TestStreamsDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	w := fixedWriter(&buf)
	out, errs := w.Stream(Stdout), w.Stream(Stderr)
	out.Write([]byte("o1 "))
	errs.Write([]byte("e1\n"))
	out.Write([]byte("o2\n"))
	want := t0.Format(time.RFC3339Nano) + " stderr F e1\n" + t0.Format(time.RFC3339Nano) + " stdout F o1 o2\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorReportedByClose(t *testing.T) {
	s := NewWriter(failWriter{}).Stream(Stdout)
	if _, err := s.Write([]byte("a\nb\n")); err != nil {
		t.Fatalf("Write must keep draining, got %v", err)
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the write error", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Entry
		wantErr bool
	}{
		{"full", "2016-10-06T00:17:09.669794202Z stdout F hello", Entry{Time: t0, Stream: Stdout, Content: []byte("hello")}, false},
		{"partial stderr", "2016-10-06T00:17:09.669794202Z stderr P he", Entry{Time: t0, Stream: Stderr, Partial: true, Content: []byte("he")}, false},
		{"empty content", "2016-10-06T00:17:09.669794202Z stdout F ", Entry{Time: t0, Stream: Stdout, Content: []byte{}}, false},
		{"no space after tag", "2016-10-06T00:17:09.669794202Z stdout F", Entry{Time: t0, Stream: Stdout, Content: nil}, false},
		{"content with spaces", "2016-10-06T00:17:09.669794202Z stdout F a  b ", Entry{Time: t0, Stream: Stdout, Content: []byte("a  b ")}, false},
		{"extra tags", "2016-10-06T00:17:09.669794202Z stdout P:x a", Entry{Time: t0, Stream: Stdout, Partial: true, Content: []byte("a")}, false},
		{"zone offset", "2016-10-06T02:17:09.669794202+02:00 stdout F a", Entry{Time: t0, Stream: Stdout, Content: []byte("a")}, false},
		{"bad time", "yesterday stdout F a", Entry{}, true},
		{"bad stream", "2016-10-06T00:17:09.669794202Z stdin F a", Entry{}, true},
		{"bad tag", "2016-10-06T00:17:09.669794202Z stdout X a", Entry{}, true},
		{"no tag", "2016-10-06T00:17:09.669794202Z stdout", Entry{}, true},
		{"empty", "", Entry{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Errorf("error %v does not wrap ErrFormat", err)
				}
				return
			}
			if !got.Time.Equal(tt.want.Time) || got.Stream != tt.want.Stream || got.Partial != tt.want.Partial || !bytes.Equal(got.Content, tt.want.Content) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2016-10-06T00:17:09.669794202Z stdout F hello",
		"2016-10-06T00:17:09.669794202Z stderr P ",
		"2016-10-06T00:17:09Z stdout F:x a b",
		"2016-10-06T02:17:09.1+02:00 stdout F",
		"x y z",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		if bytes.IndexByte(e.Content, '\n') >= 0 {
			return // not a line; AppendEntry would make two
		}
		if y := e.Time.Year(); y < 0 || y > 9999 {
			return // RFC 3339 cannot format it back
		}
		// What parses formats back to something that parses the same.
		out := AppendEntry(nil, e)
		e2, err := Parse(out[:len(out)-1])
		if err != nil {
			t.Fatalf("reparse %q: %v", out, err)
		}
		if !e2.Time.Equal(e.Time) || e2.Stream != e.Stream || e2.Partial != e.Partial || !bytes.Equal(e2.Content, e.Content) {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := fixedWriter(&buf)
	out, errs := w.Stream(Stdout), w.Stream(Stderr)
	long := strings.Repeat("z", MaxLineSize+10)
	out.Write([]byte("one\n" + long + "\n"))
	errs.Write([]byte("two\n"))
	buf.WriteString("garbage line\n")
	out.Write([]byte("tail"))
	out.Close()

	type ent struct {
		stream  string
		partial bool
		content string
	}
	want := []ent{
		{Stdout, false, "one"},
		{Stdout, true, long[:MaxLineSize]},
		{Stdout, false, "zzzzzzzzzz"},
		{Stderr, false, "two"},
		{Stdout, true, "tail"},
	}
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			r := NewReader(chunkReader{bytes.NewReader(buf.Bytes()), chunk})
			var got []ent
			for {
				e, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !e.Time.Equal(t0) {
					t.Errorf("time %v", e.Time)
				}
				got = append(got, ent{e.Stream, e.Partial, string(e.Content)})
			}
			if len(got) != len(want) {
				t.Fatalf("got %d entries, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("entry %d = %v, want %v", i, trunc(fmt.Sprint(got[i])), trunc(fmt.Sprint(want[i])))
				}
			}
		})
	}
}

func TestReaderSkipsOverlongLine(t *testing.T) {
	data := strings.Repeat("x", 3*maxLine) + "\n" + t0.Format(time.RFC3339Nano) + " stdout F ok\n"
	r := NewReader(strings.NewReader(data))
	e, err := r.Next()
	if err != nil || string(e.Content) != "ok" {
		t.Fatalf("Next = %q, %v; want ok", e.Content, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want EOF", err)
	}
}

func TestTailOffset(t *testing.T) {
	tests := []struct {
		name string
		data string
		n    int
		want string // the data from the returned offset
	}{
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 5, "a\nb\n"},
		{"exactly all", "a\nb\n", 2, "a\nb\n"},
		{"no trailing newline", "a\nb\nc", 1, "c"},
		{"zero", "a\n", 0, ""},
		{"empty file", "", 3, ""},
		{"long file", strings.Repeat("0123456789\n", 2000), 3, strings.Repeat("0123456789\n", 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, err := TailOffset(strings.NewReader(tt.data), int64(len(tt.data)), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.data[off:]; got != tt.want {
				t.Errorf("got %q, want %q", trunc(got), trunc(tt.want))
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var buf bytes.Buffer
	s := fixedWriter(&buf).Stream(Stdout)
	for i := range 5 {
		fmt.Fprintf(s, "line %d\n", i)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tail int
		want []string
	}{
		{"all", 0, []string{"line 0", "line 1", "line 2", "line 3", "line 4"}},
		{"tail 2", 2, []string{"line 3", "line 4"}},
		{"tail 10", 10, []string{"line 0", "line 1", "line 2", "line 3", "line 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := ReadFile(context.Background(), path, ReadOptions{Tail: tt.tail}, func(e Entry) error {
				got = append(got, string(e.Content))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f)
	s := w.Stream(Stdout)
	s.Write([]byte("before\n"))

	exited := make(chan struct{})
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- ReadFile(context.Background(), path, ReadOptions{Follow: true, Exited: exited, Poll: time.Hour}, func(e Entry) error {
			got <- string(e.Content)
			return nil
		})
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q (inotify did not wake the follower)", want)
		}
	}
	expect("before")
	s.Write([]byte("during\n"))
	expect("during")
	// Written just before the exit is signalled: must still be read.
	s.Write([]byte("last\n"))
	close(exited)
	expect("last")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop after the exit")
	}
}

func TestFollowStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ReadFile(ctx, path, ReadOptions{Follow: true}, func(Entry) error { return nil })
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop")
	}
}
