package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/watch"

	"skiff.dev/skiff/internal/store"
)

// bookmarkInterval is how often a watch that allows bookmarks gets one.
var bookmarkInterval = 30 * time.Second

type watchOptions struct {
	bookmarks         bool
	timeout           time.Duration
	sendInitialEvents *bool
}

func parseWatchOptions(q url.Values) (watchOptions, error) {
	wo := watchOptions{bookmarks: isTrue(q.Get("allowWatchBookmarks"))}
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return wo, apierrors.NewBadRequest(fmt.Sprintf("timeoutSeconds %q must be a non-negative integer", v))
		}
		wo.timeout = time.Duration(n) * time.Second
	}
	if v := q.Get("sendInitialEvents"); v != "" {
		b := isTrue(v)
		wo.sendInitialEvents = &b
	}
	return wo, nil
}

// watchEncoder writes watch events in the negotiated form.
type watchEncoder struct {
	s         *Server
	w         io.Writer // framed for protobuf
	rc        *http.ResponseController
	k         *kind
	out       output
	include   string
	sentTable bool
}

// send writes one event. Plain JSON and protobuf forms of shared events
// are encoded once for all watchers.
func (e *watchEncoder) send(typ watch.EventType, ev *event, obj runtime.Object, prev bool) error {
	if e.out.as == "" && e.k.toServed == nil && ev != nil {
		line, err := ev.encode(encodingKey{typ: string(typ), proto: e.out.proto, prev: prev}, func() ([]byte, error) {
			return e.encode(typ, obj)
		})
		if err != nil {
			return err
		}
		_, err = e.w.Write(line)
		return err
	}
	served, err := e.k.servedForm(obj)
	if err != nil {
		return err
	}
	var payload any = served
	switch e.out.as {
	case "Table":
		t, err := e.s.table(e.k, []runtime.Object{served}, e.include, e.out, !e.sentTable)
		if err != nil {
			return err
		}
		e.sentTable = true
		payload = t
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		payload = partialMetadataV(served, e.out)
	}
	return e.write(typ, payload)
}

func (e *watchEncoder) write(typ watch.EventType, payload any) error {
	b, err := e.encode(typ, payload)
	if err != nil {
		return err
	}
	_, err = e.w.Write(b)
	return err
}

// encode returns the bytes of one watch event: a protobuf WatchEvent (to
// be framed) or a JSON line.
func (e *watchEncoder) encode(typ watch.EventType, payload any) ([]byte, error) {
	if ro, ok := payload.(runtime.Object); ok && e.out.proto {
		var obj bytes.Buffer
		if err := protoSerializer.Encode(ro, &obj); err != nil {
			return nil, err
		}
		var ev bytes.Buffer
		if err := protoRaw.Encode(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: obj.Bytes()}}, &ev); err != nil {
			return nil, err
		}
		return ev.Bytes(), nil
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	line, err := json.Marshal(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// bookmark sends a BOOKMARK carrying only a resourceVersion; end marks
// the end of the initial events of a watch-list.
func (e *watchEncoder) bookmark(rev int64, end bool) error {
	obj := e.k.newServed()
	obj.GetObjectKind().SetGroupVersionKind(e.k.served)
	m := accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if end {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	var payload any = obj
	if e.out.as == "PartialObjectMetadata" || e.out.as == "PartialObjectMetadataList" {
		payload = partialMetadataV(obj, e.out)
	}
	return e.write(watch.Bookmark, payload)
}

func (e *watchEncoder) flush() { e.rc.Flush() }

func (s *Server) watch(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	lo, err := parseListOptions(r)
	if err != nil {
		return err
	}
	match, err := s.matcher(k, lo)
	if err != nil {
		return err
	}
	if ri.name != "" {
		// A watch of one object: /namespaces/ns/pods/name?watch=1.
		lo.fields = andName(lo, ri.name)
		if match, err = s.matcher(k, lo); err != nil {
			return err
		}
	}
	wo := lo.watch
	initial := lo.rv == "" || lo.rv == "0"
	if wo.sendInitialEvents != nil {
		if *wo.sendInitialEvents && (lo.rvMatch != "NotOlderThan" || !wo.bookmarks) {
			return apierrors.NewBadRequest("sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true")
		}
		initial = *wo.sendInitialEvents
	}
	timeout := wo.timeout
	if timeout == 0 {
		timeout = 30*time.Minute + time.Duration(rand.Int64N(int64(30*time.Minute)))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var startRev int64
	var initialObjs []runtime.Object
	if initial {
		lo.limit, lo.cont = 0, ""
		res, rev, err := s.listObjects(ctx, k, ri.namespace, lo)
		if err != nil {
			return err
		}
		initialObjs, startRev = res.items, rev
	} else if startRev, err = parseRV(lo.rv); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	events, stop := s.subscribe(ctx, k, ri.namespace, startRev)
	defer stop()

	var body io.Writer = w
	if out.proto {
		w.Header().Set("Content-Type", protoType+";stream=watch")
		body = protobuf.LengthDelimitedFramer.NewFrameWriter(w)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := &watchEncoder{s: s, w: body, rc: http.NewResponseController(w), k: k, out: out, include: lo.includeObject}
	for _, obj := range initialObjs {
		if err := enc.send(watch.Added, nil, obj, false); err != nil {
			return nil
		}
	}
	if wo.sendInitialEvents != nil && *wo.sendInitialEvents {
		enc.bookmark(startRev, true)
	}
	enc.flush()

	lastRev := startRev
	tick := time.NewTicker(bookmarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if wo.bookmarks {
				if enc.bookmark(lastRev, false) != nil {
					return nil
				}
				enc.flush()
			}
		case ev, ok := <-events:
			if !ok {
				return nil // the watch fell behind or its source restarted: the client resumes
			}
			if ev.err != nil {
				enc.write(watch.Error, watchErrorStatus(ev.err, startRev))
				enc.flush()
				return nil
			}
			if ev.rev <= lastRev {
				continue
			}
			lastRev = ev.rev
			if ev.progress {
				continue
			}
			typ, obj, prev := translate(ev, match)
			if obj == nil {
				continue
			}
			if err := enc.send(typ, ev, obj, prev); err != nil {
				return nil
			}
			// Flush when no more events are queued, so bursts go out together.
			if len(events) == 0 {
				enc.flush()
			}
		}
	}
}

// subscribe returns the events of kind k under namespace ns after rev:
// from the watch cache when it still has them, otherwise from a store
// watch of this request's own (which fails with 410 once compacted).
func (s *Server) subscribe(ctx context.Context, k *kind, ns string, rev int64) (<-chan *event, func()) {
	prefix := k.listPrefix(ns)
	if c := s.caches[k.storage]; c != nil {
		if sub, err := c.subscribe(prefix, rev); err == nil {
			return sub.ch, func() { c.unsubscribe(sub) }
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *event, 64)
	go func() {
		defer close(out)
		for res := range s.cfg.Store.Watch(ctx, prefix, rev) {
			var evs []*event
			switch {
			case res.Err != nil:
				evs = []*event{{err: res.Err}}
			case res.Progress:
				evs = []*event{{rev: res.Rev, progress: true}}
			}
			for _, se := range res.Events {
				e, err := k.newEvent(se)
				if err != nil {
					s.log.Error("watch: undecodable object", "key", se.Key, "err", err)
					continue
				}
				evs = append(evs, e)
			}
			for _, e := range evs {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, cancel
}

func watchErrorStatus(err error, rev int64) *metav1.Status {
	var st metav1.Status
	if errors.Is(err, store.ErrCompacted) {
		st = apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", rev)).ErrStatus
	} else {
		st = apierrors.NewInternalError(err).ErrStatus
	}
	st.Kind, st.APIVersion = "Status", "v1"
	return &st
}

// translate turns a change into the event one filtered watch sees: an
// object that stops matching is DELETED for it, one that starts matching
// is ADDED. obj is nil when the watch should not see the change; prev
// says the object shown is the previous state.
func translate(ev *event, match func(runtime.Object) bool) (typ watch.EventType, obj runtime.Object, prev bool) {
	curOK := ev.cur != nil && match(ev.cur)
	prevOK := ev.prev != nil && match(ev.prev)
	switch {
	case ev.deleted:
		if prevOK {
			return watch.Deleted, ev.prev, true
		}
	case curOK && prevOK:
		return watch.Modified, ev.cur, false
	case curOK:
		return watch.Added, ev.cur, false
	case prevOK:
		return watch.Deleted, ev.prev, true
	}
	return "", nil, false
}

func andName(lo listOptions, name string) fields.Selector {
	return fields.AndSelectors(lo.fields, fields.OneTermEqualSelector("metadata.name", name))
}
