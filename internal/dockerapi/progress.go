package dockerapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
	"skiff.dev/skiff/internal/errdefs"
)

// progressMessage is one message of Docker's JSON progress stream. Error
// also goes out as the legacy top-level "error" string older clients read.
type progressMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// progressKind says which field the Backend's plain lines fill.
type progressKind int

const (
	// statusLines become {"status": line} (pull, push).
	statusLines progressKind = iota
	// streamLines become {"stream": line + "\n"} (build, load).
	streamLines
)

// progressStream turns the Backend's plain progress lines into Docker's
// JSON message stream. The response (200, application/json) starts with
// the first message, so an operation that fails before reporting anything
// still gets a real error status; one that fails later reports the error
// inside the stream, which is where clients look for it then.
type progressStream struct {
	w    http.ResponseWriter
	kind progressKind

	mu      sync.Mutex
	started bool
	closed  bool
	partial []byte
	enc     *json.Encoder
}

func newProgressStream(w http.ResponseWriter, kind progressKind) *progressStream {
	return &progressStream{w: w, kind: kind}
}

var errProgressClosed = errors.New("progress stream closed")

// Write takes plain text; every complete line becomes a message.
func (p *progressStream) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errProgressClosed
	}
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(p.partial[:i], "\r"))
		p.partial = p.partial[i+1:]
		if err := p.sendLocked(p.lineMessage(line)); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (p *progressStream) lineMessage(line string) *progressMessage {
	m := &progressMessage{}
	if p.kind == streamLines {
		m.Stream = line + "\n"
	} else {
		m.Status = line
	}
	return m
}

// send writes one message.
func (p *progressStream) send(m *progressMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sendLocked(m)
}

func (p *progressStream) sendLocked(m *progressMessage) error {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.enc = json.NewEncoder(p.w)
		p.enc.SetEscapeHTML(false)
	}
	if err := p.enc.Encode(m); err != nil {
		return err
	}
	flush(p.w)
	return nil
}

// finish ends the stream with the operation's result. It returns err if
// the response has not started (the caller answers it as an error), nil
// once err has been reported in the stream.
func (p *progressStream) finish(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		_ = p.sendLocked(p.lineMessage(string(p.partial)))
		p.partial = nil
	}
	p.closed = true
	if err == nil {
		if !p.started {
			p.w.Header().Set("Content-Type", "application/json")
			p.w.WriteHeader(http.StatusOK)
		}
		return nil
	}
	if !p.started {
		return err
	}
	_ = p.sendLocked(errorMessage(err))
	return nil
}

func errorMessage(err error) *progressMessage {
	return &progressMessage{
		Message:      jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}},
		ErrorMessage: errdefs.Message(err),
	}
}

func auxMessage(v any) (*progressMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(b)
	return &progressMessage{Message: jsonstream.Message{Aux: &raw}}, nil
}
