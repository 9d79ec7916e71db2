package wakeup_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"skiff.dev/skiff/internal/controllers/wakeup"
)

// recorder collects the keys handed over.
type recorder struct {
	mu   sync.Mutex
	keys []string
	got  chan string
}

func (r *recorder) add(k string) {
	r.mu.Lock()
	r.keys = append(r.keys, k)
	r.mu.Unlock()
	r.got <- k
}

func start(t *testing.T, c clock.PassiveClock) (*wakeup.Wakeups[string], *recorder) {
	w := wakeup.New[string](c)
	r := &recorder{got: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, r.add); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, r
}

func expect(t *testing.T, r *recorder, want string) {
	t.Helper()
	select {
	case k := <-r.got:
		if k != want {
			t.Fatalf("got %q, want %q", k, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not handed over", want)
	}
}

func expectNothing(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case k := <-r.got:
		t.Fatalf("%q handed over early", k)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestFakeClock(t *testing.T) {
	cases := []struct {
		name string
		// steps moves the clock; the key is due 30s after the start.
		steps []time.Duration
		due   bool
	}{
		{name: "not yet", steps: []time.Duration{29 * time.Second}},
		{name: "exactly", steps: []time.Duration{30 * time.Second}, due: true},
		{name: "in small steps", steps: []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second}, due: true},
		{name: "far past", steps: []time.Duration{time.Hour}, due: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := testingclock.NewFakeClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
			w, r := start(t, fake)
			w.After("k", 30*time.Second)
			for _, s := range tc.steps {
				fake.Step(s)
			}
			if tc.due {
				expect(t, r, "k")
			}
			expectNothing(t, r)
		})
	}
}

func TestEarliestWins(t *testing.T) {
	fake := testingclock.NewFakeClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	w, r := start(t, fake)
	now := fake.Now()
	w.At("k", now.Add(time.Minute))
	w.At("k", now.Add(10*time.Second))
	w.At("k", now.Add(30*time.Second))
	fake.Step(10 * time.Second)
	expect(t, r, "k")
	fake.Step(time.Hour)
	expectNothing(t, r)
}

// TestSteppedBeforeAsked: a time already past when asked for is handed
// over at once.
func TestSteppedBeforeAsked(t *testing.T) {
	fake := testingclock.NewFakeClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	w, r := start(t, fake)
	due := fake.Now().Add(time.Minute)
	fake.Step(2 * time.Minute)
	w.At("k", due)
	expect(t, r, "k")
}

func TestRealClock(t *testing.T) {
	w, r := start(t, nil)
	w.After("a", 50*time.Millisecond)
	w.After("b", 0)
	expect(t, r, "b")
	expect(t, r, "a")
}
