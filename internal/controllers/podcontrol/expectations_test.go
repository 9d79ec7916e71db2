package podcontrol_test

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

func TestExpectations(t *testing.T) {
	const key = "ns/rs"
	cases := []struct {
		name string
		// run acts on fresh expectations; the clock starts at t0.
		run  func(e *podcontrol.Expectations, clk *clocktesting.FakePassiveClock)
		want bool
	}{
		{name: "nothing expected", run: func(*podcontrol.Expectations, *clocktesting.FakePassiveClock) {}, want: true},
		{name: "creations outstanding", want: false, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 2)
			e.CreationObserved(key)
		}},
		{name: "creations observed", want: true, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 2)
			e.CreationObserved(key)
			e.CreationObserved(key)
		}},
		{name: "more creations observed than expected", want: true, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 1)
			e.CreationObserved(key)
			e.CreationObserved(key)
		}},
		{name: "a deletion seen twice counts once", want: false, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectDeletions(key, []string{"ns/a", "ns/b"})
			e.DeletionObserved(key, "ns/a")
			e.DeletionObserved(key, "ns/a")
		}},
		{name: "deletions observed", want: true, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectDeletions(key, []string{"ns/a", "ns/b"})
			e.DeletionObserved(key, "ns/b")
			e.DeletionObserved(key, "ns/a")
		}},
		{name: "an unrelated deletion does not count", want: false, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectDeletions(key, []string{"ns/a"})
			e.DeletionObserved(key, "ns/z")
		}},
		{name: "other keys do not count", want: false, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 1)
			e.CreationObserved("ns/other")
		}},
		{name: "expired", want: true, run: func(e *podcontrol.Expectations, clk *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 1)
			clk.SetTime(clk.Now().Add(podcontrol.ExpectationsTimeout + time.Second))
		}},
		{name: "forgotten", want: true, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectCreations(key, 1)
			e.Forget(key)
		}},
		{name: "new expectations replace old", want: false, run: func(e *podcontrol.Expectations, _ *clocktesting.FakePassiveClock) {
			e.ExpectDeletions(key, []string{"ns/a"})
			e.ExpectCreations(key, 1)
			e.DeletionObserved(key, "ns/a")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			e := podcontrol.NewExpectations(clk)
			tc.run(e, clk)
			if got := e.Satisfied(key); got != tc.want {
				t.Errorf("Satisfied = %v, want %v", got, tc.want)
			}
		})
	}
}
