package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"io"
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

func (e *watchEncoder) send(typ watch.EventType, obj runtime.Object) error {
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
	if ro, ok := payload.(runtime.Object); ok && e.out.proto {
		var obj bytes.Buffer
		if err := protoSerializer.Encode(ro, &obj); err != nil {
			return err
		}
		var ev bytes.Buffer
		if err := protoRaw.Encode(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: obj.Bytes()}}, &ev); err != nil {
			return err
		}
		_, err := e.w.Write(ev.Bytes())
		return err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	line, err := json.Marshal(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		return err
	}
	_, err = e.w.Write(append(line, '\n'))
	return err
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
	events := s.cfg.Store.Watch(ctx, k.listPrefix(ri.namespace), startRev)

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
		if err := enc.send(watch.Added, obj); err != nil {
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
		case res, ok := <-events:
			if !ok {
				return nil
			}
			if res.Err != nil {
				enc.write(watch.Error, watchErrorStatus(res.Err, startRev))
				enc.flush()
				return nil
			}
			if res.Progress {
				lastRev = max(lastRev, res.Rev)
				continue
			}
			for _, ev := range res.Events {
				typ, obj, err := s.translate(k, ev, match)
				if err != nil {
					s.log.Error("watch: bad stored object", "component", "apiserver", "key", ev.Key, "err", err)
					continue
				}
				lastRev = ev.Rev
				if obj == nil {
					continue
				}
				if err := enc.send(typ, obj); err != nil {
					return nil
				}
			}
			enc.flush()
		}
	}
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

// translate turns a store event into a watch event for a filtered watch:
// an object that stops matching is DELETED for this watcher, one that
// starts matching is ADDED. obj is nil when the watcher should not see it.
func (s *Server) translate(k *kind, ev store.Event, match func(runtime.Object) bool) (watch.EventType, runtime.Object, error) {
	var cur, prev runtime.Object
	var err error
	if ev.Value != nil {
		if cur, err = k.decode(ev.Value, ev.Rev); err != nil {
			return "", nil, err
		}
	}
	if ev.Prev != nil && !ev.Created {
		if prev, err = k.decode(ev.Prev, ev.Rev); err != nil {
			return "", nil, err
		}
	}
	curOK := cur != nil && match(cur)
	prevOK := prev != nil && match(prev)
	switch {
	case ev.Type == store.Delete:
		if prevOK {
			return watch.Deleted, prev, nil
		}
	case curOK && prevOK:
		return watch.Modified, cur, nil
	case curOK:
		return watch.Added, cur, nil
	case prevOK:
		accessor(prev).SetResourceVersion(strconv.FormatInt(ev.Rev, 10))
		return watch.Deleted, prev, nil
	}
	return "", nil, nil
}

func andName(lo listOptions, name string) fields.Selector {
	return fields.AndSelectors(lo.fields, fields.OneTermEqualSelector("metadata.name", name))
}
