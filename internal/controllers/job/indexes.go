package job

import (
	"slices"
	"strconv"
	"strings"
)

// indexSet is a set of completion indexes as sorted, disjoint, non-adjacent
// closed intervals, the shape of status.completedIndexes ("1,3-5,7").
type indexSet []interval

type interval struct{ first, last int }

// parseIndexes reads a completedIndexes string, keeping indexes below
// completions and skipping malformed parts.
func parseIndexes(s string, completions int) indexSet {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
		}
		for i := first; i <= last && i < completions; i++ {
			out = append(out, i)
		}
	}
	return indexSet(nil).with(out)
}

// with returns the set with ixs added.
func (s indexSet) with(ixs []int) indexSet {
	all := make([]int, 0, s.total()+len(ixs))
	for _, iv := range s {
		for i := iv.first; i <= iv.last; i++ {
			all = append(all, i)
		}
	}
	all = append(all, ixs...)
	slices.Sort(all)
	all = slices.Compact(all)
	var out indexSet
	for _, i := range all {
		if n := len(out); n > 0 && out[n-1].last == i-1 {
			out[n-1].last = i
			continue
		}
		out = append(out, interval{i, i})
	}
	return out
}

func (s indexSet) has(i int) bool {
	_, found := slices.BinarySearchFunc(s, i, func(iv interval, i int) int {
		switch {
		case iv.last < i:
			return -1
		case iv.first > i:
			return 1
		}
		return 0
	})
	return found
}

func (s indexSet) total() int {
	n := 0
	for _, iv := range s {
		n += iv.last - iv.first + 1
	}
	return n
}

func (s indexSet) String() string {
	var b strings.Builder
	for i, iv := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(iv.first))
		if iv.last != iv.first {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(iv.last))
		}
	}
	return b.String()
}

// firstPending returns up to n indexes below completions that have not
// succeeded and have no active pod, lowest first.
func firstPending(done indexSet, activeIx map[int]bool, n, completions int) []int {
	var out []int
	for i := 0; i < completions && len(out) < n; i++ {
		if !done.has(i) && !activeIx[i] {
			out = append(out, i)
		}
	}
	return out
}
