// Package wire is the protocol between the engine (package runtime) and a
// container's shim (package shim, binary skiff-shim) on the shim's control
// socket, <state>/<id>/shim.sock, and on the start report pipe.
//
// Both directions carry frames: an 8-byte header — a Kind byte, three zero
// bytes, the payload length as a big-endian uint32 (the layout of Docker's
// stdcopy) — and the payload. A connection carries one operation: the
// client sends a KindRequest frame (JSON Request), the shim answers with a
// KindResponse frame (JSON Response). Unary operations end there. attach
// and exec go on: the shim sends KindStdout/KindStderr frames, and for exec
// a last KindExit frame; the client may send KindStdin, KindCloseStdin and
// KindResize frames. The shim closes the connection when the stream ends.
//
// It is kept apart from package shim so that the engine does not link
// libcontainer; it imports only the standard library, the runtime-spec
// types, cgroups' stats type and errdefs.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// Kind is a frame's type.
type Kind byte

// Frame kinds.
const (
	KindStdin      Kind = 0  // client → shim: input bytes
	KindStdout     Kind = 1  // shim → client: output bytes (all of a TTY's)
	KindStderr     Kind = 2  // shim → client: error output bytes
	KindRequest    Kind = 16 // client → shim: JSON Request
	KindResponse   Kind = 17 // shim → client: JSON Response
	KindCloseStdin Kind = 18 // client → shim: the client's input ended
	KindResize     Kind = 19 // client → shim: JSON Size of the terminal
	KindExit       Kind = 20 // shim → client: JSON Exit of an exec process
)

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// Operations.
const (
	OpState     = "state"
	OpKill      = "kill"
	OpWait      = "wait"
	OpAttach    = "attach"
	OpResize    = "resize"
	OpExec      = "exec"
	OpProcesses = "processes"
	OpStats     = "stats"
)

// Request is the first frame of a connection.
type Request struct {
	Op string `json:"op"`
	// Kill.
	Signal int  `json:"signal,omitempty"`
	All    bool `json:"all,omitempty"`
	// Resize.
	Size *Size `json:"size,omitempty"`
	// Attach and exec: which streams the client wants.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// Exec.
	ExecID  string         `json:"execID,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
}

// Size is a terminal size in characters.
type Size struct {
	Width  uint16 `json:"width"`
	Height uint16 `json:"height"`
}

// Response answers a Request.
type Response struct {
	// Error and ErrorKind describe a failure (see ErrorResponse).
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"errorKind,omitempty"`

	Running bool           `json:"running,omitempty"`
	Pid     int            `json:"pid,omitempty"`
	Exit    *ExitStatus    `json:"exit,omitempty"`
	Pids    []int          `json:"pids,omitempty"`
	Stats   *cgroups.Stats `json:"stats,omitempty"`
}

// ExitStatus is how a container's init ended; the shim also writes it to
// <state>/<id>/exit.json.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when a signal killed it.
	Code       int       `json:"code"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Exit is the payload of a KindExit frame.
type Exit struct {
	Code int `json:"code"`
}

// StartReport is what the shim writes on the report pipe (fd 3) once the
// container's init runs, or why it could not.
type StartReport struct {
	Pid       int    `json:"pid,omitempty"`
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"errorKind,omitempty"`
}

// The error kinds that cross the socket; others arrive as plain errors.
var errorKinds = map[string]error{
	"notFound":      errdefs.ErrNotFound,
	"alreadyExists": errdefs.ErrAlreadyExists,
	"conflict":      errdefs.ErrConflict,
	"invalid":       errdefs.ErrInvalid,
	"unavailable":   errdefs.ErrUnavailable,
}

// KindOf names err's errdefs kind, or "" for none.
func KindOf(err error) string {
	for name, kind := range errorKinds {
		if errors.Is(err, kind) {
			return name
		}
	}
	return ""
}

// ErrorResponse is the Response for err.
func ErrorResponse(err error) *Response {
	return &Response{Error: err.Error(), ErrorKind: KindOf(err)}
}

// RemoteError rebuilds an error sent by the shim: its message unchanged,
// wrapping the named errdefs kind.
func RemoteError(msg, kind string) error {
	if msg == "" {
		return nil
	}
	return &remoteError{msg: msg, kind: errorKinds[kind]}
}

type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// Err is the response's error, or nil.
func (r *Response) Err() error { return RemoteError(r.Error, r.ErrorKind) }

// WriteFrame writes one frame with a single Write call (callers writing
// from several goroutines serialize the calls themselves).
func WriteFrame(w io.Writer, k Kind, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d bytes is too big", len(payload))
	}
	buf := make([]byte, HeaderSize+len(payload))
	buf[0] = byte(k)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(payload)))
	copy(buf[HeaderSize:], payload)
	_, err := w.Write(buf)
	return err
}

// WriteJSON writes v as a frame of kind k.
func WriteJSON(w io.Writer, k Kind, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, k, b)
}

// ReadFrame reads one frame; buf is reused for the payload when it is big
// enough. The payload is valid until the next call with the same buf.
func ReadFrame(r io.Reader, buf []byte) (Kind, []byte, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is too big", n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return Kind(h[0]), buf, nil
}

// ReadJSON reads a frame that must be of kind k and decodes it into v.
func ReadJSON(r io.Reader, k Kind, v any) error {
	got, payload, err := ReadFrame(r, nil)
	if err != nil {
		return err
	}
	if got != k {
		return fmt.Errorf("got a frame of kind %d, want %d", got, k)
	}
	return json.Unmarshal(payload, v)
}
