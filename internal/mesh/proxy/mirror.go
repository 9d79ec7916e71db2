package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Mirroring, as Envoy's request mirror policies under Istio's mirrors:
// a drawn share of a route's requests is copied, as forwarded (headers
// edited, path rewritten), to another cluster with "-shadow" appended to
// the authority. The copy goes out on its own goroutine; its answer is
// dropped and it never delays or fails the request it copies. A request
// body is copied only when it has a known length of at most MaxRetryBody
// (it is then held in memory); requests with larger bodies are not
// mirrored.

// maxMirrorsInFlight bounds a route's copies in flight; a copy over the
// bound is not sent.
const maxMirrorsInFlight = 64

// defaultMirrorTimeout bounds a copy when its route has no timeout.
const defaultMirrorTimeout = 30 * time.Second

type mirrorTarget struct {
	cluster *cluster
	share   uint32 // per million
}

// mirrorSet is a route's compiled Mirrors.
type mirrorSet struct {
	targets  []mirrorTarget
	inflight atomic.Int32
}

func (c *compiler) mirrors(f string, in []Mirror) *mirrorSet {
	if len(in) == 0 {
		return nil
	}
	s := &mirrorSet{}
	for k, m := range in {
		cl := c.clusters[m.Cluster]
		if cl == nil {
			c.errorf("%s[%d].cluster: no cluster %q", f, k, m.Cluster)
			continue
		}
		if !validPercent(m.Percent) {
			c.errorf("%s[%d].percent: %v (0 to 100)", f, k, m.Percent)
		}
		s.targets = append(s.targets, mirrorTarget{cluster: cl, share: share(m.Percent)})
	}
	return s
}

// mirrorable reports whether r's body can be copied.
func mirrorable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 ||
		(r.ContentLength > 0 && r.ContentLength <= MaxRetryBody)
}

// drawMirrors picks the clusters this request is copied to (nil for
// none: the common case allocates nothing).
func (p *Proxy) drawMirrors(s *mirrorSet, r *http.Request) []*cluster {
	if !mirrorable(r) {
		return nil
	}
	var out []*cluster
	for _, t := range s.targets {
		if p.draw(t.share) {
			out = append(out, t.cluster)
		}
	}
	return out
}

// mirrorRequest is what a copy sends: the request as forwarded.
type mirrorRequest struct {
	method string
	url    url.URL // without scheme and host
	host   string
	header http.Header
	body   []byte
}

// sendMirrors sends a copy of m to each cluster, in the background.
func (p *Proxy) sendMirrors(s *mirrorSet, clusters []*cluster, m *mirrorRequest, timeout time.Duration) {
	if timeout <= 0 {
		timeout = defaultMirrorTimeout
	}
	m.host = shadowHost(m.host)
	for _, cl := range clusters {
		if s.inflight.Add(1) > maxMirrorsInFlight {
			s.inflight.Add(-1)
			p.log.Debug("mirror dropped: too many in flight", "cluster", cl.name)
			continue
		}
		go func() {
			defer s.inflight.Add(-1)
			p.mirror(cl, m, timeout)
		}()
	}
}

func (p *Proxy) mirror(cl *cluster, m *mirrorRequest, timeout time.Duration) {
	ep := cl.pick(nil)
	if ep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	u := m.url
	u.Scheme, u.Host = "http", ep.addr
	req := &http.Request{Method: m.method, URL: &u, Host: m.host, Header: m.header.Clone(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(len(m.body))}
	if len(m.body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(m.body))
	}
	ep.active.Add(1)
	defer ep.active.Add(-1)
	res, err := ep.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		p.log.Debug("mirror failed", "cluster", cl.name, "endpoint", ep.addr, "err", err)
		return
	}
	discard(res.Body)
}

// shadowHost appends "-shadow" to the host part of an authority, as
// Envoy does ("a.b:80" becomes "a.b-shadow:80").
func shadowHost(authority string) string {
	if host, port, err := net.SplitHostPort(authority); err == nil {
		return net.JoinHostPort(host+"-shadow", port)
	}
	return authority + "-shadow"
}
