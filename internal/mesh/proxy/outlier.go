package proxy

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

// This file is outlier detection (DestinationRule's outlierDetection, as
// Envoy does it): each try's result is charged to its endpoint; an
// endpoint that reaches Consecutive5xx 5xx answers (or
// ConsecutiveGatewayErrors 502/503/504 answers and failures to connect or
// answer) in a row is ejected at once, unless that would eject more than
// MaxEjectionPercent of the endpoints. Every Interval a sweep returns the
// endpoints ejected for BaseEjectionTime × times-ejected (at most
// max(BaseEjectionTime, 300s)) and forgives one ejection of endpoints
// that stayed in. Ejected endpoints are skipped by every LB policy,
// unless fewer than MinHealthPercent of the endpoints are healthy (panic:
// all are used).

// Outlier detection defaults (Istio's and Envoy's), for fields left 0. A
// threshold left 0 is off (Istio leaves Envoy's consecutive_5xx at 5 when
// consecutive5xxErrors is unset: the translator says 5).
const (
	DefaultOutlierInterval    = 10 * time.Second
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionPercent = 10
	maxEjectionTime           = 300 * time.Second // Envoy's max_ejection_time
)

// What a try's failure is charged as (Envoy without
// split_external_local_origin_errors maps local failures to codes).
const (
	outlierCodeLocalFailure = 503 // connect failures and resets
	outlierCodeLocalTimeout = 504 // timeouts
	outlierCodeNone         = 0   // nothing to charge (the client went away)
	outlierCodeOverflow     = -1  // refused locally: not the endpoint's fault
)

// outlier is a cluster's detector; nil when the cluster has none.
type outlier struct {
	cfg OutlierDetection // defaults applied
	c   *cluster
	now func() time.Time

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
	// healthy is the endpoints not ejected, nil while none is.
	healthy atomic.Pointer[[]*endpoint]
	// panic: too few endpoints are healthy, every one is used.
	panic atomic.Bool
}

// epOutlier is one endpoint's outlier state.
type epOutlier struct {
	cons5xx, consGateway atomic.Int32
	ejected              atomic.Bool
	// Under outlier.mu:
	ejections int
	ejectedAt time.Time
}

func newOutlier(c *cluster, in *OutlierDetection) *outlier {
	if in == nil || (in.Consecutive5xx == 0 && in.ConsecutiveGatewayErrors == 0) {
		return nil
	}
	cfg := *in
	if cfg.Interval == 0 {
		cfg.Interval = DefaultOutlierInterval
	}
	if cfg.BaseEjectionTime == 0 {
		cfg.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if cfg.MaxEjectionPercent == 0 {
		cfg.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return &outlier{cfg: cfg, c: c, now: time.Now}
}

// report charges one try's result to ep: the upstream's status, or one of
// the outlierCode values for failures.
func (o *outlier) report(ep *endpoint, code int) {
	if o == nil || code == outlierCodeNone || code == outlierCodeOverflow {
		return
	}
	st := &ep.outlier
	if code < 500 || code > 599 {
		if st.cons5xx.Load() != 0 {
			st.cons5xx.Store(0)
		}
		if st.consGateway.Load() != 0 {
			st.consGateway.Store(0)
		}
		return
	}
	eject := false
	if code == 502 || code == 503 || code == 504 {
		n := st.consGateway.Add(1)
		eject = o.cfg.ConsecutiveGatewayErrors > 0 && int(n) >= o.cfg.ConsecutiveGatewayErrors
	} else {
		st.consGateway.Store(0)
	}
	n := st.cons5xx.Add(1)
	eject = eject || (o.cfg.Consecutive5xx > 0 && int(n) >= o.cfg.Consecutive5xx)
	if eject && !st.ejected.Load() {
		o.eject(ep)
	}
}

func (o *outlier) eject(ep *endpoint) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := &ep.outlier
	if o.closed || st.ejected.Load() {
		return
	}
	eps := o.c.endpoints()
	if !contains(eps, ep) {
		return // left the cluster meanwhile
	}
	ejected := 0
	for _, e := range eps {
		if e.outlier.ejected.Load() {
			ejected++
		}
	}
	// As Envoy: eject only if the ejected share, this one included, stays
	// within the maximum.
	if 100*(ejected+1) > o.cfg.MaxEjectionPercent*len(eps) {
		return
	}
	st.ejected.Store(true)
	st.ejections++
	st.ejectedAt = o.now()
	st.cons5xx.Store(0)
	st.consGateway.Store(0)
	o.refreshLocked(eps)
	if o.timer == nil {
		o.timer = time.AfterFunc(o.cfg.Interval, o.sweep)
	}
}

// sweep returns endpoints whose ejection time is over and forgives one
// ejection of the others; it re-arms while there is anything to do.
func (o *outlier) sweep() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	now := o.now()
	eps := o.c.endpoints()
	busy := false
	for _, e := range eps {
		st := &e.outlier
		switch {
		case st.ejected.Load():
			d := min(time.Duration(st.ejections)*o.cfg.BaseEjectionTime, max(o.cfg.BaseEjectionTime, maxEjectionTime))
			if !now.Before(st.ejectedAt.Add(d)) {
				st.ejected.Store(false)
			}
			busy = true
		case st.ejections > 0:
			st.ejections--
			busy = busy || st.ejections > 0
		}
	}
	o.refreshLocked(eps)
	if busy {
		o.timer.Reset(o.cfg.Interval)
	} else {
		o.timer = nil
	}
}

// refresh recomputes the healthy set (the endpoints changed).
func (o *outlier) refresh() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refreshLocked(o.c.endpoints())
}

func (o *outlier) refreshLocked(eps []*endpoint) {
	healthy := make([]*endpoint, 0, len(eps))
	for _, e := range eps {
		if !e.outlier.ejected.Load() {
			healthy = append(healthy, e)
		}
	}
	if len(healthy) == len(eps) {
		o.healthy.Store(nil)
		o.panic.Store(false)
		return
	}
	o.panic.Store(len(eps) > 0 && 100*len(healthy) < o.cfg.MinHealthPercent*len(eps))
	o.healthy.Store(&healthy)
}

// candidates are the endpoints a pick may choose from.
func (o *outlier) candidates(all []*endpoint) []*endpoint {
	if o == nil {
		return all
	}
	h := o.healthy.Load()
	if h == nil || o.panic.Load() {
		return all
	}
	return *h
}

// usable reports whether a pick may choose e (hash rings walk past the
// others).
func (o *outlier) usable(e *endpoint) bool {
	return o == nil || !e.outlier.ejected.Load() || o.panic.Load()
}

func (o *outlier) close() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
}

// EndpointStatus is one endpoint's health as the proxy sees it.
type EndpointStatus struct {
	Address string            `json:"address"`
	Mesh    bool              `json:"mesh,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Ejected by outlier detection, until EjectedUntil.
	Ejected      bool      `json:"ejected,omitempty"`
	EjectedUntil time.Time `json:"ejectedUntil,omitzero"`
	// Ejections is the ejection multiplier (times ejected, less those
	// forgiven).
	Ejections                int `json:"ejections,omitempty"`
	Consecutive5xx           int `json:"consecutive5xx,omitempty"`
	ConsecutiveGatewayErrors int `json:"consecutiveGatewayErrors,omitempty"`
	// ActiveRequests are the requests in flight to it.
	ActiveRequests int `json:"activeRequests,omitempty"`
}

// ClusterStatus is a cluster's live state (for debugging: skiff mesh
// explain).
type ClusterStatus struct {
	Name      string           `json:"name"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// Panic: fewer than MinHealthPercent of the endpoints are healthy, so
	// ejected ones are used too.
	Panic   bool           `json:"panic,omitempty"`
	Breaker *BreakerStatus `json:"breaker,omitempty"`
}

// ClusterStatus reports the named cluster's endpoints with their outlier
// state and its circuit breaker counters.
func (p *Proxy) ClusterStatus(name string) (*ClusterStatus, error) {
	cl := p.snap.Load().clusters[name]
	if cl == nil {
		return nil, fmt.Errorf("cluster %q: %w", name, errdefs.ErrNotFound)
	}
	return cl.status(), nil
}

func (c *cluster) status() *ClusterStatus {
	s := &ClusterStatus{Name: c.name, Breaker: c.cb.status()}
	o := c.od
	if o != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		s.Panic = o.panic.Load() && o.healthy.Load() != nil
	}
	for _, e := range c.endpoints() {
		st := &e.outlier
		es := EndpointStatus{Address: e.addr, Mesh: e.mesh, ActiveRequests: int(e.active.Load()),
			Consecutive5xx: int(st.cons5xx.Load()), ConsecutiveGatewayErrors: int(st.consGateway.Load())}
		if l := e.labels.Load(); l != nil {
			es.Labels = *l
		}
		if o != nil {
			es.Ejections = st.ejections
			if st.ejected.Load() {
				es.Ejected = true
				d := min(time.Duration(st.ejections)*o.cfg.BaseEjectionTime, max(o.cfg.BaseEjectionTime, maxEjectionTime))
				es.EjectedUntil = st.ejectedAt.Add(d)
			}
		}
		s.Endpoints = append(s.Endpoints, es)
	}
	return s
}
