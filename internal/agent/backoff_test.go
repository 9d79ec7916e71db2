package agent

import (
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// TestBackOff plays a crash-looping container against a fake clock: the
// first restart is immediate, then 10 s, 20 s, 40 s, ... capped at 5 min,
// and back to 10 s once a run lasted over 10 min.
func TestBackOff(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newBackOff(clk, 10*time.Second, 5*time.Minute, 10*time.Minute)
	const key = "pod/c"

	// crash makes the container run for ran, then exit, and returns the
	// wait before it may restart; then it restarts it.
	crash := func(ran time.Duration) time.Duration {
		clk.Step(ran)
		failed := clk.Now()
		wait := b.wait(key, failed)
		clk.Step(wait)
		if left := b.wait(key, failed); left != 0 {
			t.Fatalf("still %v to wait after waiting %v", left, wait)
		}
		b.next(key, failed)
		return wait
	}
	var got []time.Duration
	for range 8 {
		got = append(got, crash(time.Second))
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	}
	// Waiting part of the window leaves the rest.
	clk.Step(time.Second)
	failed := clk.Now()
	clk.Step(100 * time.Second)
	if left := b.wait(key, failed); left != 200*time.Second {
		t.Errorf("after 100s of 300s: wait %v, want 200s", left)
	}
	b.next(key, failed)
	// A run of more than 10 minutes starts the back-off over: restart at
	// once, then 10 s.
	if w := crash(11 * time.Minute); w != 0 {
		t.Errorf("after a long run: wait %v, want 0", w)
	}
	if w := crash(time.Second); w != 10*time.Second {
		t.Errorf("second crash after reset: wait %v, want 10s", w)
	}
	// Image pulls count from the last retry.
	b.next("img", clk.Now())
	clk.Step(4 * time.Second)
	if w := b.waitSinceRetry("img"); w != 6*time.Second {
		t.Errorf("image back-off: %v left, want 6s", w)
	}
	b.gc()
	clk.Step(11 * time.Minute)
	b.gc()
	if b.window(key) != 0 || b.window("img") != 0 {
		t.Error("gc kept stale entries")
	}
}
