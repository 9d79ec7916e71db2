package endpoints

import (
	"strconv"
	"sync"
	"time"
)

// trackerTTL bounds how long a write is waited for, in case its event was
// lost.
const trackerTTL = 30 * time.Second

// tracker remembers, per Service, the objects this controller wrote or
// deleted, until the cache shows the write. A sync that would act on an
// older cache waits instead: otherwise it could create a second slice for
// endpoints it already placed, or skip an update because the stale copy
// happens to look right.
type tracker struct {
	mu   sync.Mutex
	byID map[string]map[string]expectation // Service key → object name →
}

type expectation struct {
	// rv is the resourceVersion written; 0 means deleted.
	rv uint64
	at time.Time
}

func newTracker() *tracker { return &tracker{byID: map[string]map[string]expectation{}} }

func parseRV(rv string) (uint64, bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}

// wrote records an object written with resourceVersion rv.
func (t *tracker) wrote(key, name, rv string) {
	n, ok := parseRV(rv)
	if !ok {
		return
	}
	t.set(key, name, expectation{rv: n, at: time.Now()})
}

// deleted records an object deleted.
func (t *tracker) deleted(key, name string) { t.set(key, name, expectation{at: time.Now()}) }

func (t *tracker) set(key, name string, e expectation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byID[key]
	if m == nil {
		m = map[string]expectation{}
		t.byID[key] = m
	}
	m[name] = e
}

// observe settles expectations with what an informer delivered.
func (t *tracker) observe(key, name, rv string, gone bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byID[key]
	e, ok := m[name]
	if !ok {
		return
	}
	n, _ := parseRV(rv)
	// A deletion settles both: an expected delete happened, and an
	// expected write will never show.
	if gone || e.rv != 0 && n >= e.rv {
		delete(m, name)
		if len(m) == 0 {
			delete(t.byID, key)
		}
	}
}

// stale reports whether cached (object name → resourceVersion, as the
// cache has them) is behind any write recorded for the Service.
func (t *tracker) stale(key string, cached map[string]string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byID[key]
	for name, e := range m {
		rv, have := cached[name]
		n, _ := parseRV(rv)
		switch {
		case time.Since(e.at) > trackerTTL,
			e.rv == 0 && !have,
			e.rv != 0 && have && n >= e.rv:
			delete(m, name)
		default:
			return true
		}
	}
	if len(m) == 0 {
		delete(t.byID, key)
	}
	return false
}

// forget drops what is known about a Service.
func (t *tracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, key)
}
