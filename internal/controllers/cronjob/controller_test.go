package cronjob_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"skiff.dev/skiff/internal/testenv"
)

// TestEveryMinute: a "*/1 * * * *" CronJob makes one Job per minute as
// the clock advances, named after the scheduled minute.
func TestEveryMinute(t *testing.T) {
	cl := startCluster(t, time.Now().Add(-time.Hour))
	cj, m := cl.createTicking(t, newCronJob("tick", "*/1 * * * *", batchv1.AllowConcurrent))
	cl.stayJobs(t, cj)

	var want []string
	for i := 1; i <= 3; i++ {
		cl.clock.Step(time.Minute)
		at := m.Add(time.Duration(i) * time.Minute)
		want = append(want, jobAt(cj, at))
		cl.waitJobs(t, cj, want...)
		testenv.Eventually(t, fmt.Sprintf("minute %d in the status", i), func(ctx context.Context) (bool, error) {
			got := cl.get(t, cj)
			return got.Status.LastScheduleTime != nil && got.Status.LastScheduleTime.Time.Equal(at) && len(got.Status.Active) == i, nil
		})
	}
	cl.stayJobs(t, cj, want...)

	j := cl.jobs(t, cj)[0]
	if j.Labels["app"] != "tick" || j.Annotations["note"] != "from the template" {
		t.Errorf("job metadata not from the template: labels %v annotations %v", j.Labels, j.Annotations)
	}
	at := m.Add(time.Minute)
	if got, want := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation], at.UTC().Format(time.RFC3339); got != want {
		t.Errorf("scheduled timestamp annotation %q, want %q", got, want)
	}
	if !metav1.IsControlledBy(&j, cj) {
		t.Errorf("job %s is not controlled by the cronjob: %+v", j.Name, j.OwnerReferences)
	}
}

// TestForbid: while a Job runs no other starts. When it finishes, the
// time it held up runs at once (as upstream, when no
// startingDeadlineSeconds rules it out).
func TestForbid(t *testing.T) {
	cl := startCluster(t, time.Now().Add(-time.Hour))
	cj, m := cl.createTicking(t, newCronJob("forbid", "* * * * *", batchv1.ForbidConcurrent))

	cl.clock.Step(time.Minute)
	first := jobAt(cj, m.Add(time.Minute))
	cl.waitJobs(t, cj, first)
	cl.clock.Step(time.Minute)
	cl.stayJobs(t, cj, first)

	cl.finish(t, cj.Namespace, first, batchv1.JobComplete)
	second := jobAt(cj, m.Add(2*time.Minute))
	cl.waitJobs(t, cj, first, second)
	testenv.Eventually(t, "only "+second+" is active", func(ctx context.Context) (bool, error) {
		got := cl.get(t, cj)
		return len(got.Status.Active) == 1 && got.Status.Active[0].Name == second && got.Status.LastSuccessfulTime != nil, nil
	})
	cl.clock.Step(time.Minute)
	cl.stayJobs(t, cj, first, second)
}

// TestReplace: a Job still running at the next time is deleted and
// replaced.
func TestReplace(t *testing.T) {
	cl := startCluster(t, time.Now().Add(-time.Hour))
	cj, m := cl.createTicking(t, newCronJob("replace", "* * * * *", batchv1.ReplaceConcurrent))

	cl.clock.Step(time.Minute)
	cl.waitJobs(t, cj, jobAt(cj, m.Add(time.Minute)))
	cl.clock.Step(time.Minute)
	second := jobAt(cj, m.Add(2*time.Minute))
	cl.waitJobs(t, cj, second)
	testenv.Eventually(t, "only "+second+" is active", func(ctx context.Context) (bool, error) {
		got := cl.get(t, cj)
		return len(got.Status.Active) == 1 && got.Status.Active[0].Name == second, nil
	})
}

// TestHistoryLimits: with the Job controller running, only the newest
// successfulJobsHistoryLimit succeeded and failedJobsHistoryLimit failed
// Jobs are kept.
func TestHistoryLimits(t *testing.T) {
	cases := []struct {
		name        string
		fail        bool
		limit       int32
		wantReasons batchv1.JobConditionType
	}{
		{name: "succeeded", limit: 2, wantReasons: batchv1.JobComplete},
		{name: "failed", fail: true, limit: 1, wantReasons: batchv1.JobFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := startCluster(t, time.Now().Add(-time.Hour))
			cl.startJobs(t)
			spec := newCronJob("history", "* * * * *", batchv1.AllowConcurrent)
			if tc.fail {
				spec.Spec.JobTemplate.Spec.Template.Annotations = map[string]string{"fake.skiff.dev/fail": "true"}
			}
			spec.Spec.SuccessfulJobsHistoryLimit = ptr.To(tc.limit)
			spec.Spec.FailedJobsHistoryLimit = ptr.To(tc.limit)
			cj, m := cl.createTicking(t, spec)
			var made []string
			for i := 1; i <= 4; i++ {
				cl.clock.Step(time.Minute)
				made = append(made, jobAt(cj, m.Add(time.Duration(i)*time.Minute)))
				name := made[len(made)-1]
				testenv.Eventually(t, name+" finished", func(ctx context.Context) (bool, error) {
					j, err := cl.client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return false, err
					}
					for _, c := range j.Status.Conditions {
						if c.Type == tc.wantReasons && c.Status == corev1.ConditionTrue {
							return true, nil
						}
					}
					return false, nil
				})
			}
			// The cleanup runs on the sync that sees the last one finish.
			cl.waitJobs(t, cj, made[len(made)-int(tc.limit):]...)
			testenv.Eventually(t, "no job is active", func(ctx context.Context) (bool, error) {
				got := cl.get(t, cj)
				return len(got.Status.Active) == 0 && (tc.fail || got.Status.LastSuccessfulTime != nil), nil
			})
		})
	}
}

// TestTimeZone: spec.timeZone and a CRON_TZ prefix place runs in that
// zone; the scheduled-timestamp annotation is in spec.timeZone (else UTC).
func TestTimeZone(t *testing.T) {
	// Kolkata is UTC+05:30, so its full hours are half past in UTC.
	start := time.Now().Add(2 * time.Hour)
	latest := start.UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if latest.After(start) {
		latest = latest.Add(-time.Hour)
	}
	// CRON_TZ= prefixes are no longer accepted on create (the parser's
	// tests cover them).
	cases := []struct {
		name, schedule, zone, wantStamp string
	}{
		{name: "kolkata", schedule: "0 * * * *", zone: "Asia/Kolkata", wantStamp: latest.In(mustZone(t, "Asia/Kolkata")).Format(time.RFC3339)},
		{name: "utc", schedule: "30 * * * *", zone: "Etc/UTC", wantStamp: latest.UTC().Format(time.RFC3339)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := startCluster(t, start)
			spec := newCronJob("zoned", tc.schedule, batchv1.AllowConcurrent)
			if tc.zone != "" {
				spec.Spec.TimeZone = &tc.zone
			}
			cj := cl.create(t, spec)
			// The clock is two hours past the creation: the latest missed
			// time runs at once.
			cl.waitJobs(t, cj, jobAt(cj, latest))
			j := cl.jobs(t, cj)[0]
			if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != tc.wantStamp {
				t.Errorf("scheduled timestamp %q, want %q", got, tc.wantStamp)
			}
		})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestStartingDeadline: a time found later than startingDeadlineSeconds
// after it passed is skipped; one within the deadline runs.
func TestStartingDeadline(t *testing.T) {
	cl := startCluster(t, time.Now().Add(-time.Hour))
	spec := newCronJob("deadline", "* * * * *", batchv1.AllowConcurrent)
	spec.Spec.StartingDeadlineSeconds = ptr.To[int64](10)
	cj, m := cl.createTicking(t, spec)

	cl.clock.Step(2 * time.Minute) // the last time passed 30s ago
	cl.stayJobs(t, cj)
	cl.clock.Step(31 * time.Second) // 1s after the next
	cl.waitJobs(t, cj, jobAt(cj, m.Add(3*time.Minute)))
}

// TestSuspend: a suspended CronJob starts nothing; resumed, it runs the
// time it missed.
func TestSuspend(t *testing.T) {
	cl := startCluster(t, time.Now().Add(-time.Hour))
	spec := newCronJob("paused", "* * * * *", batchv1.AllowConcurrent)
	spec.Spec.Suspend = ptr.To(true)
	cj, m := cl.createTicking(t, spec)

	cl.clock.Step(time.Minute)
	cl.stayJobs(t, cj)
	patch := []byte(`{"spec":{"suspend":false}}`)
	if _, err := cl.client.BatchV1().CronJobs(cj.Namespace).Patch(t.Context(), cj.Name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitJobs(t, cj, jobAt(cj, m.Add(time.Minute)))
}
