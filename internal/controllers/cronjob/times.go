package cronjob

import (
	"errors"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

// missed says how many scheduled times passed unmet.
type missed int

const (
	noneMissed missed = iota
	fewMissed
	manyMissed // more than 100
)

// nextDelta pads waits for the next time, against small clock skews.
const nextDelta = 100 * time.Millisecond

// mostRecent returns the latest scheduled time in (earliest, now], where
// earliest is the last schedule time (or the CronJob's creation) and, when
// withDeadline is set, no earlier than startingDeadlineSeconds ago; nil
// when there is none. It estimates how many times were missed rather than
// walking through them all, so a long outage costs nothing.
func mostRecent(cj *batchv1.CronJob, now time.Time, sched Schedule, withDeadline bool) (*time.Time, missed, error) {
	earliest := earliestTime(cj, now, withDeadline)
	t1 := sched.Next(earliest)
	if t1.IsZero() || now.Before(t1) {
		return nil, noneMissed, nil
	}
	t2 := sched.Next(t1)
	if t2.IsZero() || now.Before(t2) {
		return &t1, noneMissed, nil
	}
	// A schedule that parses but means nothing, like 31 February, gives
	// no interval to estimate from.
	interval := int64(t2.Sub(t1).Round(time.Second).Seconds())
	if interval < 1 {
		return nil, noneMissed, errors.New("time difference between two schedules is less than 1 second")
	}
	n := int64(now.Sub(t1).Seconds())/interval + 1
	// Start a little before the estimate and walk to now: exact for
	// regular schedules and @every, and close for irregular ones.
	var latest time.Time
	for t := sched.Next(t1.Add(time.Duration((n-2)*interval) * time.Second)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		latest = t
	}
	m := fewMissed
	if n > 100 {
		m = manyMissed
	}
	if latest.IsZero() {
		return nil, m, nil
	}
	return &latest, m, nil
}

func earliestTime(cj *batchv1.CronJob, now time.Time, withDeadline bool) time.Time {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; withDeadline && d != nil {
		if limit := now.Add(-time.Duration(*d) * time.Second); limit.After(earliest) {
			earliest = limit
		}
	}
	return earliest
}

// nextRun returns when to look again: just after the next scheduled time
// following the latest one due. Nil means never.
func nextRun(cj *batchv1.CronJob, now time.Time, sched Schedule) *time.Time {
	from := now
	latest, m, err := mostRecent(cj, now, sched, false)
	switch {
	case err != nil:
	case latest != nil:
		from = *latest
	case m == noneMissed:
		from = earliestTime(cj, now, false)
	}
	next := sched.Next(from)
	if next.IsZero() {
		return nil
	}
	next = next.Add(nextDelta)
	return &next
}
