package wire

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

	"skiff.dev/skiff/internal/errdefs"
)

func TestFrames(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		payload []byte
	}{
		{"empty", KindCloseStdin, nil},
		{"data", KindStdout, []byte("hello")},
		{"big", KindStderr, bytes.Repeat([]byte("x"), 70000)},
	}
	var buf bytes.Buffer
	for _, tt := range tests {
		if err := WriteFrame(&buf, tt.kind, tt.payload); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
	// Docker's stdcopy layout: kind, three zeros, big-endian length.
	if got := buf.Bytes()[HeaderSize : 2*HeaderSize]; !bytes.Equal(got, []byte{1, 0, 0, 0, 0, 0, 0, 5}) {
		t.Errorf("second header % x", got)
	}
	small := make([]byte, 16)
	for _, tt := range tests {
		k, p, err := ReadFrame(&buf, small)
		if err != nil || k != tt.kind || !bytes.Equal(p, tt.payload) {
			t.Errorf("%s: ReadFrame = %d, %d bytes, %v", tt.name, k, len(p), err)
		}
	}
	if _, _, err := ReadFrame(&buf, nil); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"short header", []byte{1, 0, 0}, "unexpected EOF"},
		{"short payload", []byte{1, 0, 0, 0, 0, 0, 0, 9, 'a'}, "unexpected EOF"},
		{"too big", []byte{1, 0, 0, 0, 0xff, 0, 0, 0}, "too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadFrame(bytes.NewReader(tt.data), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := WriteFrame(io.Discard, KindStdout, make([]byte, MaxFrame+1)); err == nil {
		t.Error("WriteFrame accepted an oversized payload")
	}
}

func TestRemoteErrorKeepsMessageAndKind(t *testing.T) {
	for _, kind := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalid, errdefs.ErrAlreadyExists, errdefs.ErrUnavailable} {
		orig := fmt.Errorf("container %q: something: %w", "c1", kind)
		resp := ErrorResponse(orig)
		err := resp.Err()
		if err.Error() != orig.Error() || !errors.Is(err, kind) {
			t.Errorf("%v came back as %v", orig, err)
		}
	}
	plain := ErrorResponse(errors.New("boom")).Err()
	if plain.Error() != "boom" || errors.Is(plain, errdefs.ErrNotFound) {
		t.Errorf("plain error came back as %v", plain)
	}
	if (&Response{}).Err() != nil {
		t.Error("a response without error has one")
	}
}

func TestLongSocketPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 2*maxSunPath {
		dir = filepath.Join(dir, strings.Repeat("d", 40))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("socket not at its real path: %v", err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			WriteFrame(c, KindStdout, []byte("hi"))
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, p, err := ReadFrame(c, nil); err != nil || string(p) != "hi" {
		t.Errorf("ReadFrame = %q, %v", p, err)
	}
}
