package cronjob

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Schedule says when a CronJob runs next.
type Schedule interface {
	// Next returns the first run strictly after t, or the zero time if
	// there is none within five years.
	Next(t time.Time) time.Time
}

// ParseSchedule reads a CronJob schedule the way upstream's parser
// (robfig/cron's standard parser) does: five fields (minute, hour, day of
// month, month, day of week) of "*", "?", numbers or three-letter names,
// ranges "a-b", steps "/n" and lists "a,b"; or a descriptor @yearly,
// @annually, @monthly, @weekly, @daily, @midnight, @hourly or
// "@every <duration>". A "CRON_TZ=<zone> " or "TZ=<zone> " prefix sets the
// time zone; otherwise loc does (nil: the local time zone).
//
// As in cron, when both day fields are restricted a day matches if either
// does; when either is "*" both must.
func ParseSchedule(spec string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	if spec == "" {
		return nil, errors.New("empty spec string")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		eq := strings.IndexByte(spec, '=')
		sp := strings.IndexByte(spec, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("provided bad location %s: missing schedule", spec[eq+1:])
		}
		name := spec[eq+1 : sp]
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("provided bad location %s: %v", name, err)
		}
		loc = l
		spec = strings.TrimSpace(spec[sp:])
	}
	if strings.HasPrefix(spec, "@") {
		return parseDescriptor(spec, loc)
	}
	fields := strings.Fields(spec)
	if len(fields) != len(fieldBounds) {
		return nil, fmt.Errorf("expected exactly %d fields, found %d: %s", len(fieldBounds), len(fields), fields)
	}
	var bits [5]uint64
	for i, f := range fields {
		b, err := parseField(f, fieldBounds[i])
		if err != nil {
			return nil, err
		}
		bits[i] = b
	}
	return &fieldSchedule{minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4], loc: loc}, nil
}

// star marks a field written as "*" or "?" (without a step above 1).
const star = 1 << 63

type bounds struct {
	min, max uint
	names    map[string]uint
}

var fieldBounds = [5]bounds{
	{min: 0, max: 59},
	{min: 0, max: 23},
	{min: 1, max: 31},
	{min: 1, max: 12, names: map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}},
	{min: 0, max: 6, names: map[string]uint{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}},
}

// parseField turns a comma-separated list into a bit set.
func parseField(field string, b bounds) (uint64, error) {
	var bits uint64
	for _, expr := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' }) {
		r, err := parseRange(expr, b)
		if err != nil {
			return 0, err
		}
		bits |= r
	}
	return bits, nil
}

// parseRange reads "*", "?", "n" or "a-b", each optionally with "/step".
func parseRange(expr string, b bounds) (uint64, error) {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	var start, end uint
	var extra uint64
	whole := lowAndHigh[0] == "*" || lowAndHigh[0] == "?"
	if whole {
		start, end, extra = b.min, b.max, star
	} else {
		var err error
		if start, err = parseValue(lowAndHigh[0], b.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = parseValue(lowAndHigh[1], b.names); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	step := uint(1)
	switch len(rangeAndStep) {
	case 1:
	case 2:
		var err error
		if step, err = parseNumber(rangeAndStep[1]); err != nil {
			return 0, err
		}
		// "n/step" means "n-max/step".
		if !whole && len(lowAndHigh) == 1 {
			end = b.max
		}
		if step > 1 {
			extra = 0
		}
	default:
		return 0, fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < b.min:
		return 0, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, b.min, expr)
	case end > b.max:
		return 0, fmt.Errorf("end of range (%d) above maximum (%d): %s", end, b.max, expr)
	case start > end:
		return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return 0, fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	var bits uint64
	for i := start; i <= end; i += step {
		bits |= 1 << i
	}
	return bits | extra, nil
}

func parseValue(s string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(s)]; ok {
		return n, nil
	}
	return parseNumber(s)
}

func parseNumber(s string) (uint, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, s)
	}
	return uint(n), nil
}

var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

func parseDescriptor(d string, loc *time.Location) (Schedule, error) {
	if spec, ok := descriptors[d]; ok {
		return ParseSchedule(spec, loc)
	}
	const every = "@every "
	if strings.HasPrefix(d, every) {
		dur, err := time.ParseDuration(d[len(every):])
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %s", d, err)
		}
		// Whole seconds, at least one, as upstream.
		dur = max(dur.Truncate(time.Second), time.Second)
		return everySchedule(dur), nil
	}
	return nil, fmt.Errorf("unrecognized descriptor: %s", d)
}

// everySchedule runs at a fixed interval after the previous run.
type everySchedule time.Duration

func (e everySchedule) Next(t time.Time) time.Time {
	return t.Add(time.Duration(e) - time.Duration(t.Nanosecond()))
}

// fieldSchedule is a five-field schedule: one bit per allowed value.
type fieldSchedule struct {
	minute, hour, dom, month, dow uint64
	loc                           *time.Location
}

// maxYears bounds the search for a schedule that never fires (31 Feb).
const maxYears = 5

// Next finds the first minute after t that every field allows. It moves
// from the largest unit down: a month that does not match skips to the
// next month, a day to the next day, and so on; each skip resets the
// smaller units. Days and hours are stepped in the schedule's zone, so a
// daylight saving change neither repeats nor skips a run needlessly.
func (s *fieldSchedule) Next(t time.Time) time.Time {
	orig := t.Location()
	t = t.In(s.loc)
	// The first whole minute after t.
	t = t.Add(time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
	limit := t.Year() + maxYears
	reset := false // whether smaller units were set to their start
wrap:
	if t.Year() > limit {
		return time.Time{}
	}
	for s.month&(1<<uint(t.Month())) == 0 {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, s.loc)
		}
		t = t.AddDate(0, 1, 0)
		if t.Month() == time.January {
			goto wrap
		}
	}
	for !s.dayMatches(t) {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, s.loc)
		}
		t = t.AddDate(0, 0, 1)
		// Midnight may not exist (or exist twice) where the clock
		// changes at midnight: land on the day's first hour.
		if h := t.Hour(); h != 0 {
			if h > 12 {
				t = t.Add(time.Duration(24-h) * time.Hour)
			} else {
				t = t.Add(-time.Duration(h) * time.Hour)
			}
		}
		if t.Day() == 1 {
			goto wrap
		}
	}
	for s.hour&(1<<uint(t.Hour())) == 0 {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, s.loc)
		}
		t = t.Add(time.Hour)
		if t.Hour() == 0 {
			goto wrap
		}
	}
	for s.minute&(1<<uint(t.Minute())) == 0 {
		if !reset {
			reset = true
			t = t.Truncate(time.Minute)
		}
		t = t.Add(time.Minute)
		if t.Minute() == 0 {
			goto wrap
		}
	}
	return t.In(orig)
}

// dayMatches applies cron's rule for the two day fields.
func (s *fieldSchedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) > 0
	dow := s.dow&(1<<uint(t.Weekday())) > 0
	if s.dom&star > 0 || s.dow&star > 0 {
		return dom && dow
	}
	return dom || dow
}
