package engine

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/internal/dockerapi"
)

// eventLog keeps the last events and fans new ones out to subscribers.
type eventLog struct {
	mu   sync.Mutex
	max  int
	past []events.Message
	subs map[chan events.Message]struct{}
}

func newEventLog(max int) *eventLog {
	return &eventLog{max: max, subs: map[chan events.Message]struct{}{}}
}

func (l *eventLog) publish(m events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.past = append(l.past, m)
	if len(l.past) > l.max {
		l.past = slices.Delete(l.past, 0, len(l.past)-l.max)
	}
	for ch := range l.subs {
		select {
		case ch <- m:
		default: // a slow subscriber misses events rather than blocking the engine
		}
	}
}

func (e *Engine) emit(typ events.Type, action events.Action, c *ctr) {
	e.emitAttrs(typ, action, c, nil)
}

func (e *Engine) emitAttrs(typ events.Type, action events.Action, c *ctr, extra map[string]string) {
	attrs := map[string]string{"name": c.rec.Name, "image": c.rec.Image}
	maps.Copy(attrs, c.rec.Config.Labels)
	maps.Copy(attrs, extra)
	e.publish(typ, action, c.rec.ID, attrs)
}

func (e *Engine) publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := e.now()
	e.events.publish(events.Message{
		Type:     typ,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}

// Events returns recorded events and, when until is zero, a live channel.
func (e *Engine) Events(ctx context.Context, since, until time.Time, filters dockerapi.Filters) ([]events.Message, <-chan events.Message, error) {
	l := e.events
	l.mu.Lock()
	var past []events.Message
	for _, m := range l.past {
		t := time.Unix(0, m.TimeNano)
		if (!since.IsZero() && t.Before(since)) || (!until.IsZero() && t.After(until)) {
			continue
		}
		if matchEvent(m, filters) {
			past = append(past, m)
		}
	}
	if !until.IsZero() {
		l.mu.Unlock()
		return past, nil, nil
	}
	raw := make(chan events.Message, 256)
	l.subs[raw] = struct{}{}
	l.mu.Unlock()
	out := make(chan events.Message, 256)
	go func() {
		defer close(out)
		defer func() {
			l.mu.Lock()
			delete(l.subs, raw)
			l.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-raw:
				if !matchEvent(m, filters) {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return past, out, nil
}

// matchEvent applies docker events filters: type, event/action, container,
// image, label, network, volume.
func matchEvent(m events.Message, f dockerapi.Filters) bool {
	for key, values := range f {
		if len(values) == 0 {
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "type":
				ok = string(m.Type) == v
			case "event", "action":
				ok = string(m.Action) == v || strings.HasPrefix(string(m.Action), v+":")
			case "container", "network", "volume":
				ok = (key == string(m.Type)) && (m.Actor.ID == v || strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
			case "image":
				ok = m.Actor.Attributes["image"] == v
			case "label":
				k, val, hasVal := strings.Cut(v, "=")
				got, present := m.Actor.Attributes[k]
				ok = present && (!hasVal || got == val)
			default:
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
