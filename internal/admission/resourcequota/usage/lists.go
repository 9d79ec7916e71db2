package usage

import (
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func one() resource.Quantity { return *resource.NewQuantity(1, resource.DecimalSI) }

// Add returns a + b; names in only one of them keep their value.
func Add(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for n, q := range a {
		out[n] = q.DeepCopy()
	}
	for n, q := range b {
		if cur, ok := out[n]; ok {
			cur.Add(q)
			out[n] = cur
		} else {
			out[n] = q.DeepCopy()
		}
	}
	return out
}

// SubtractNonNegative returns a - b per name of a, never below zero.
func SubtractNonNegative(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for n, q := range a {
		v := q.DeepCopy()
		if s, ok := b[n]; ok {
			v.Sub(s)
		}
		if v.Sign() < 0 {
			v = *resource.NewQuantity(0, q.Format)
		}
		out[n] = v
	}
	return out
}

// Mask returns the entries of list named in names.
func Mask(list corev1.ResourceList, names []corev1.ResourceName) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, n := range names {
		if q, ok := list[n]; ok {
			out[n] = q.DeepCopy()
		}
	}
	return out
}

// LessThanOrEqual reports whether every entry of a is at most the entry
// of the same name in b (names b lacks are unlimited), and which exceed.
func LessThanOrEqual(a, b corev1.ResourceList) (bool, []corev1.ResourceName) {
	var exceeded []corev1.ResourceName
	for n, q := range a {
		if limit, ok := b[n]; ok && q.Cmp(limit) > 0 {
			exceeded = append(exceeded, n)
		}
	}
	slices.Sort(exceeded)
	return len(exceeded) == 0, exceeded
}

// Equals reports whether a and b hold the same names with equal values.
func Equals(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		other, ok := b[n]
		if !ok || q.Cmp(other) != 0 {
			return false
		}
	}
	return true
}

// RemoveZeros drops the entries that are zero.
func RemoveZeros(list corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for n, q := range list {
		if !q.IsZero() {
			out[n] = q
		}
	}
	return out
}

// Negative returns the names with a negative value, sorted.
func Negative(list corev1.ResourceList) []corev1.ResourceName {
	var out []corev1.ResourceName
	for n, q := range list {
		if q.Sign() < 0 {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Names returns the names in list, sorted.
func Names(list corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(list))
	for n := range list {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Intersect returns the names in a that are also in b, in a's order.
func Intersect(a, b []corev1.ResourceName) []corev1.ResourceName {
	var out []corev1.ResourceName
	for _, n := range a {
		if slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

// String formats list as upstream's quota messages do: name=value pairs
// sorted by name and joined by commas.
func String(list corev1.ResourceList) string {
	keys := make([]string, 0, len(list))
	for n := range list {
		keys = append(keys, string(n))
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		q := list[corev1.ResourceName(k)]
		parts = append(parts, k+"="+q.String())
	}
	return strings.Join(parts, ",")
}

// NamesString formats names sorted and joined by commas.
func NamesString(names []corev1.ResourceName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
