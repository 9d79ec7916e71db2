package sidecar

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
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// The node's API over the unix socket (meshconfig.ConfigPath and
// StatusPath). The host part of the URLs is ignored.
const nodeURL = "http://skiff-mesh"

// Back-off between failed polls (the socket may not exist yet: the node
// creates it once it knows the pod).
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// poll long-polls the node for documents and applies each, until ctx
// ends.
func (s *Sidecar) poll(ctx context.Context) {
	version := ""
	delay := time.Duration(0)
	failures := 0
	retry := time.Duration(0) // after a document that could not bind
	for ctx.Err() == nil {
		doc, err := s.fetch(ctx, version)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%50 == 0 {
				s.log.Info("waiting for the node", "socket", s.opts.Socket, "err", err)
			}
			delay = min(max(2*delay, backoffMin), backoffMax)
			sleep(ctx, delay/2+rand.N(delay/2))
			continue
		}
		failures, delay = 0, 0
		if doc == nil {
			continue // not modified
		}
		st := meshconfig.Status{Version: doc.Version}
		err = s.apply(doc)
		if err != nil {
			st.Error = err.Error()
			s.log.Error("document rejected", "version", doc.Version, "err", err)
		} else {
			s.log.Info("document applied", "version", doc.Version)
		}
		if rerr := s.report(ctx, st); rerr != nil && ctx.Err() == nil {
			s.log.Warn("status not reported", "version", st.Version, "err", rerr)
		}
		if errors.Is(err, errdefs.ErrUnavailable) {
			// A listener could not bind (its port still held): ask for
			// the same document again after a while.
			retry = min(max(2*retry, backoffMin), backoffMax)
			sleep(ctx, retry)
			continue
		}
		retry = 0
		// A rejected version is not asked for again: the node answers
		// when it has a different one.
		version = doc.Version
	}
}

// fetch asks for a document newer than version; nil, nil when the node
// has none (304).
func (s *Sidecar) fetch(ctx context.Context, version string) (*meshconfig.Sidecar, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.PollTimeout)
	defer cancel()
	u := nodeURL + meshconfig.ConfigPath + "?version=" + url.QueryEscape(version)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := s.node.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, nil
	default:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("node answered %s: %s", res.Status, bytes.TrimSpace(b))
	}
	doc := &meshconfig.Sidecar{}
	if err := json.NewDecoder(res.Body).Decode(doc); err != nil {
		return nil, fmt.Errorf("decoding the document: %w", err)
	}
	return doc, nil
}

// report tells the node whether a document was applied.
func (s *Sidecar) report(ctx context.Context, st meshconfig.Status) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nodeURL+meshconfig.StatusPath, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.node.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("node answered %s", res.Status)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
