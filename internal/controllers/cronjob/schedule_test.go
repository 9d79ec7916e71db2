package cronjob

import (
	"strings"
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNext(t *testing.T) {
	utc := time.UTC
	ny := mustZone(t, "America/New_York")
	cases := []struct {
		name, spec string
		loc        *time.Location
		from       string // RFC3339
		want       []string
	}{
		{name: "every minute", spec: "*/1 * * * *", from: "2024-05-01T10:00:30Z",
			want: []string{"2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z"}},
		{name: "on the minute goes to the next", spec: "* * * * *", from: "2024-05-01T10:00:00Z",
			want: []string{"2024-05-01T10:01:00Z"}},
		{name: "step of 15", spec: "*/15 * * * *", from: "2024-05-01T10:07:00Z",
			want: []string{"2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:00:00Z"}},
		{name: "n/step is n-max/step", spec: "50/5 * * * *", from: "2024-05-01T10:00:00Z",
			want: []string{"2024-05-01T10:50:00Z", "2024-05-01T10:55:00Z", "2024-05-01T11:50:00Z"}},
		{name: "range with step", spec: "0 9-17/4 * * *", from: "2024-05-01T10:00:00Z",
			want: []string{"2024-05-01T13:00:00Z", "2024-05-01T17:00:00Z", "2024-05-02T09:00:00Z"}},
		{name: "list", spec: "5,10 0 * * *", from: "2024-05-01T00:06:00Z",
			want: []string{"2024-05-01T00:10:00Z", "2024-05-02T00:05:00Z"}},
		{name: "hourly", spec: "@hourly", from: "2024-05-01T10:59:59Z",
			want: []string{"2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"}},
		{name: "daily", spec: "@daily", from: "2024-12-31T10:00:00Z",
			want: []string{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"}},
		{name: "midnight", spec: "@midnight", from: "2024-05-01T00:00:00Z", want: []string{"2024-05-02T00:00:00Z"}},
		{name: "weekly is sunday", spec: "@weekly", from: "2024-05-01T00:00:00Z", want: []string{"2024-05-05T00:00:00Z", "2024-05-12T00:00:00Z"}},
		{name: "monthly", spec: "@monthly", from: "2024-01-31T12:00:00Z", want: []string{"2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"}},
		{name: "yearly", spec: "@yearly", from: "2024-05-01T00:00:00Z", want: []string{"2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
		{name: "annually", spec: "@annually", from: "2024-05-01T00:00:00Z", want: []string{"2025-01-01T00:00:00Z"}},
		{name: "every 90s", spec: "@every 1m30s", from: "2024-05-01T00:00:00.5Z",
			want: []string{"2024-05-01T00:01:30Z", "2024-05-01T00:03:00Z"}},
		{name: "names", spec: "0 12 * JAN,jul mon-Fri", from: "2024-05-01T00:00:00Z",
			want: []string{"2024-07-01T12:00:00Z", "2024-07-02T12:00:00Z"}},
		{name: "question mark is star", spec: "0 0 ? * ?", from: "2024-05-01T00:00:00Z", want: []string{"2024-05-02T00:00:00Z"}},
		{name: "day of month or of week when both restricted", spec: "0 0 13 * 5", from: "2024-09-01T00:00:00Z",
			want: []string{"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z", "2024-10-04T00:00:00Z"}},
		{name: "day of month and week when one is star", spec: "0 0 * * 5", from: "2024-09-01T00:00:00Z",
			want: []string{"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z"}},
		{name: "star/1 keeps the star rule", spec: "0 0 */1 * 5", from: "2024-09-01T00:00:00Z",
			want: []string{"2024-09-06T00:00:00Z"}},
		{name: "star/2 is a restriction", spec: "0 0 */2 * 5", from: "2024-09-01T00:00:00Z",
			want: []string{"2024-09-03T00:00:00Z", "2024-09-05T00:00:00Z", "2024-09-06T00:00:00Z", "2024-09-07T00:00:00Z"}},
		{name: "leap day", spec: "0 0 29 2 *", from: "2025-01-01T00:00:00Z", want: []string{"2028-02-29T00:00:00Z"}},
		{name: "never", spec: "0 0 31 2 *", from: "2024-01-01T00:00:00Z", want: []string{"0001-01-01T00:00:00Z"}},
		{name: "31st skips short months", spec: "0 0 31 * *", from: "2024-04-01T00:00:00Z",
			want: []string{"2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"}},
		{name: "time zone", spec: "0 9 * * *", loc: ny, from: "2024-07-01T00:00:00Z",
			want: []string{"2024-07-01T13:00:00Z", "2024-07-02T13:00:00Z"}},
		{name: "CRON_TZ prefix wins", spec: "CRON_TZ=America/New_York 0 9 * * *", loc: utc, from: "2024-01-10T00:00:00Z",
			want: []string{"2024-01-10T14:00:00Z"}},
		{name: "TZ prefix", spec: "TZ=Asia/Tokyo 30 8 * * *", loc: utc, from: "2024-01-10T00:00:00Z",
			want: []string{"2024-01-10T23:30:00Z"}},
		{name: "spring forward skips the missing hour", spec: "30 2 * * *", loc: ny, from: "2024-03-09T12:00:00Z",
			want: []string{"2024-03-11T06:30:00Z"}},
		{name: "spring forward every hour", spec: "0 * * * *", loc: ny, from: "2024-03-10T05:30:00Z",
			want: []string{"2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"}},
		// 01:30 happens twice when clocks go back; upstream's parser runs
		// at both, and so does this one.
		{name: "fall back runs the repeated time twice", spec: "30 1 * * *", loc: ny, from: "2024-11-03T04:00:00Z",
			want: []string{"2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"}},
		{name: "daily across the change", spec: "0 0 * * *", loc: ny, from: "2024-11-02T12:00:00Z",
			want: []string{"2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = utc
			}
			s, err := ParseSchedule(tc.spec, loc)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.spec, err)
			}
			from, err := time.Parse(time.RFC3339Nano, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				want, _ := time.Parse(time.RFC3339, w)
				got := s.Next(from)
				if !got.Equal(want) {
					t.Fatalf("run %d after %s: got %s, want %s", i+1, from.UTC().Format(time.RFC3339), got.UTC().Format(time.RFC3339), w)
				}
				from = got
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"", "empty spec string"},
		{"* * * *", "expected exactly 5 fields, found 4"},
		{"* * * * * *", "expected exactly 5 fields, found 6"},
		{"60 * * * *", "end of range (60) above maximum (59)"},
		{"* 24 * * *", "end of range (24) above maximum (23)"},
		{"* * 0 * *", "beginning of range (0) below minimum (1)"},
		{"* * * 13 *", "end of range (13) above maximum (12)"},
		{"* * * * 7", "end of range (7) above maximum (6)"},
		{"5-1 * * * *", "beginning of range (5) beyond end of range (1)"},
		{"*/0 * * * *", "step of range should be a positive number"},
		{"1-2-3 * * * *", "too many hyphens"},
		{"*/2/3 * * * *", "too many slashes"},
		{"x * * * *", "failed to parse int from x"},
		{"* * * foo *", "failed to parse int from foo"},
		{"-1 * * * *", "failed to parse int from "},
		{"@fortnightly", "unrecognized descriptor"},
		{"@every fast", "failed to parse duration"},
		{"TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus"},
		{"CRON_TZ=UTC", "missing schedule"},
		{"99999999999999999999 * * * *", "failed to parse int"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := ParseSchedule(tc.spec, time.UTC)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSchedule(%q) = %v, want an error with %q", tc.spec, err, tc.want)
			}
		})
	}
}

// matches says whether the five-field schedule allows minute t, by its
// definition rather than by Next's search.
func (s *fieldSchedule) matches(t time.Time) bool {
	t = t.In(s.loc)
	return s.minute&(1<<uint(t.Minute())) > 0 && s.hour&(1<<uint(t.Hour())) > 0 &&
		s.month&(1<<uint(t.Month())) > 0 && s.dayMatches(t)
}

// FuzzSchedule checks that parsing never panics and that Next returns the
// first matching minute: later than the start, matching, and with no
// matching minute skipped (checked by brute force over a window).
func FuzzSchedule(f *testing.F) {
	for _, seed := range []string{
		"*/1 * * * *", "0 9-17/4 * * mon-fri", "0 0 13 * 5", "30 2 * * *", "@hourly", "@every 5m",
		"CRON_TZ=America/New_York 30 1 * * *", "TZ=Europe/London 0 1 * * sun", "0 0 29 2 *", "1,2,3 * * * ?",
		"0 0 31 2 *", ",,, * * * *",
	} {
		f.Add(seed, int64(1710000000), "America/New_York")
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64, zone string) {
		loc, err := time.LoadLocation(zone)
		if err != nil || len(zone) > 40 {
			loc = time.UTC
		}
		s, err := ParseSchedule(spec, loc)
		if err != nil {
			return
		}
		// Keep to years the zone database and the search handle well.
		from := time.Unix(unix%(200*365*24*3600), 0).UTC().AddDate(1900, 0, 0)
		next := s.Next(from)
		fs, ok := s.(*fieldSchedule)
		if !ok {
			if !next.After(from) {
				t.Fatalf("%q: Next(%s) = %s, not later", spec, from, next)
			}
			return
		}
		if next.IsZero() {
			// Never within five years: no minute of the next year may match.
			for m := from.Truncate(time.Minute).Add(time.Minute); m.Before(from.AddDate(1, 0, 0)); m = m.Add(time.Minute) {
				if fs.matches(m) {
					t.Fatalf("%q: Next(%s) = never, but %s matches", spec, from, m)
				}
			}
			return
		}
		if !next.After(from) {
			t.Fatalf("%q: Next(%s) = %s, not later", spec, from, next)
		}
		if !fs.matches(next) || next.Second() != 0 || next.Nanosecond() != 0 {
			t.Fatalf("%q: Next(%s) = %s, which does not match", spec, from, next)
		}
		window := min(next.Sub(from), 40*24*time.Hour)
		for m := from.Truncate(time.Minute).Add(time.Minute); m.Before(from.Add(window)) && m.Before(next); m = m.Add(time.Minute) {
			if fs.matches(m) {
				t.Fatalf("%q: Next(%s) = %s skips %s", spec, from, next, m)
			}
		}
	})
}

func BenchmarkNext(b *testing.B) {
	ny := mustZone(b, "America/New_York")
	for _, spec := range []string{"*/1 * * * *", "0 9-17/4 * * mon-fri", "0 0 29 2 *"} {
		s, err := ParseSchedule(spec, ny)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			t := time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
			for b.Loop() {
				t = s.Next(t)
				if t.Year() > 2200 {
					t = time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := ParseSchedule("CRON_TZ=Europe/Paris 0,30 9-17 * jan-jun mon-fri", nil); err != nil {
			b.Fatal(err)
		}
	}
}
