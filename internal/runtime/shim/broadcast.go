package shim

import (
	"io"
	"sync"
	"time"

	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// writeDeadline bounds a write to an attached client: a client that does
// not read for this long is detached, so that it cannot stall the
// container's output or the other clients.
const writeDeadline = 10 * time.Second

// broadcaster sends the init's output frames to the attached clients.
type broadcaster struct {
	mu    sync.Mutex
	subs  map[*subscriber]struct{}
	ended bool
}

// subscriber is one attached client.
type subscriber struct {
	conn           connWriter
	stdout, stderr bool
	gone           chan struct{} // closed when detached
	once           sync.Once
}

// connWriter is the part of a connection the broadcaster uses.
type connWriter interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

func newSubscriber(c connWriter, stdout, stderr bool) *subscriber {
	return &subscriber{conn: c, stdout: stdout, stderr: stderr, gone: make(chan struct{})}
}

func (sub *subscriber) detach() { sub.once.Do(func() { close(sub.gone) }) }

// add subscribes sub; false when the output has already ended.
func (b *broadcaster) add(sub *subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return false
	}
	if b.subs == nil {
		b.subs = map[*subscriber]struct{}{}
	}
	b.subs[sub] = struct{}{}
	return true
}

func (b *broadcaster) remove(sub *subscriber) {
	b.mu.Lock()
	delete(b.subs, sub)
	b.mu.Unlock()
	sub.detach()
}

func (b *broadcaster) broadcast(k wire.Kind, frame []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs {
		if (k == wire.KindStdout && !sub.stdout) || (k == wire.KindStderr && !sub.stderr) {
			continue
		}
		_ = sub.conn.SetWriteDeadline(time.Now().Add(writeDeadline))
		if _, err := sub.conn.Write(frame); err != nil {
			delete(b.subs, sub)
			sub.detach()
		}
	}
}

// end detaches everyone: the output is drained.
func (b *broadcaster) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	for sub := range b.subs {
		sub.detach()
	}
	b.subs = nil
}
