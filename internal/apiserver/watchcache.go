package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/internal/store"
)

// cacheCapacity is how many recent events of a kind the watch cache keeps
// for watches that resume from an older resourceVersion.
const cacheCapacity = 1024

// subscriberBuffer is how many events a client watch may fall behind
// before it is closed (the client then resumes from its last version).
const subscriberBuffer = 1024

// event is one change of an object, decoded once and shared read-only by
// every watch that sees it, with its encodings cached.
type event struct {
	rev      int64
	key      string
	deleted  bool
	created  bool
	progress bool  // a progress notification: no object, only rev
	err      error // the store watch failed (uncached watches only)
	cur      runtime.Object
	prev     runtime.Object

	mu      sync.Mutex
	encoded map[encodingKey][]byte
}

type encodingKey struct {
	typ   string
	proto bool
	prev  bool
}

// encode returns the event's wire bytes for one form, computing them once.
func (e *event) encode(key encodingKey, compute func() ([]byte, error)) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.encoded[key]; ok {
		return b, nil
	}
	b, err := compute()
	if err != nil {
		return nil, err
	}
	if e.encoded == nil {
		e.encoded = map[encodingKey][]byte{}
	}
	e.encoded[key] = b
	return b, nil
}

func (k *kind) newEvent(ev store.Event) (*event, error) {
	e := &event{rev: ev.Rev, key: ev.Key, deleted: ev.Type == store.Delete, created: ev.Created}
	var err error
	if ev.Value != nil {
		if e.cur, err = k.decode(ev.Value, ev.Rev); err != nil {
			return nil, err
		}
	}
	if ev.Prev != nil && !ev.Created {
		// A deleted object, or one that left a watcher's selection, is
		// shown at the revision of the change.
		if e.prev, err = k.decode(ev.Prev, ev.Rev); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// cacher fans one store watch of a kind out to every client watch of it,
// so each change is decoded and encoded once however many watch it, and
// keeps the latest events for watches that resume.
type cacher struct {
	k   *kind
	st  store.Interface
	log *slog.Logger

	mu sync.Mutex
	// events hold the changes after startRev, oldest first.
	events   []*event
	startRev int64
	lastRev  int64
	running  bool
	subs     map[*subscription]struct{}
}

// subscription is one client watch fed by a cacher.
type subscription struct {
	ch chan *event
	// prefix restricts the keys (namespace).
	prefix string
	closed bool
}

var errTooOld = errors.New("resourceVersion older than the watch cache")

func newCacher(k *kind, st store.Interface, log *slog.Logger) *cacher {
	return &cacher{k: k, st: st, log: log, subs: map[*subscription]struct{}{}}
}

// run keeps the cache fed from the store until ctx ends, restarting the
// store watch (and closing client watches, which then resume) on errors.
func (c *cacher) run(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := c.st.CurrentRev(ctx)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.reset(rev)
		for res := range c.st.Watch(ctx, c.k.prefix, rev) {
			if res.Err != nil {
				if ctx.Err() == nil {
					c.log.Warn("watch cache restarts", "resource", c.k.qualified(), "err", res.Err)
				}
				break
			}
			if res.Progress {
				c.add(&event{rev: res.Rev, progress: true})
				continue
			}
			for _, ev := range res.Events {
				e, err := c.k.newEvent(ev)
				if err != nil {
					c.log.Error("watch cache: undecodable object", "key", ev.Key, "err", err)
					continue
				}
				c.add(e)
			}
		}
		c.stop()
	}
}

func (c *cacher) reset(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events, c.startRev, c.lastRev, c.running = nil, rev, rev, true
}

// stop closes every subscription: their continuity is lost.
func (c *cacher) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = false
	for s := range c.subs {
		c.drop(s)
	}
}

func (c *cacher) add(e *event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.rev <= c.lastRev && !e.progress {
		return
	}
	c.lastRev = max(c.lastRev, e.rev)
	if !e.progress {
		if len(c.events) == cacheCapacity {
			c.startRev = c.events[0].rev
			copy(c.events, c.events[1:])
			c.events = c.events[:len(c.events)-1]
		}
		c.events = append(c.events, e)
	}
	for s := range c.subs {
		if !e.progress && !bytesHasPrefix(e.key, s.prefix) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			c.drop(s) // too slow: the client resumes from its last version
		}
	}
}

func (c *cacher) drop(s *subscription) {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	delete(c.subs, s)
}

// subscribe starts a client watch of keys under prefix with the events
// after rev. It fails with errTooOld when the cache no longer has them.
func (c *cacher) subscribe(prefix string, rev int64) (*subscription, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || rev < c.startRev {
		return nil, errTooOld
	}
	var backlog []*event
	for _, e := range c.events {
		if e.rev > rev && bytesHasPrefix(e.key, prefix) {
			backlog = append(backlog, e)
		}
	}
	s := &subscription{ch: make(chan *event, len(backlog)+subscriberBuffer), prefix: prefix}
	for _, e := range backlog {
		s.ch <- e
	}
	c.subs[s] = struct{}{}
	return s, nil
}

func (c *cacher) unsubscribe(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(s)
}

func bytesHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && s[:len(prefix)] == prefix
}
