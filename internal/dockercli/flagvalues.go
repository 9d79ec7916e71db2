package dockercli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// The pflag.Value types below check each value as it is parsed, so that a
// bad one fails with pflag's `invalid argument "x" for "-p, --publish"
// flag: ...` before anything is sent.

// listValue is a repeatable flag whose values are checked (and may be
// normalised) by check; nil check accepts anything.
type listValue struct {
	values []string
	check  func(string) (string, error)
}

func newList(check func(string) (string, error)) *listValue { return &listValue{check: check} }

func (l *listValue) Set(s string) error {
	if l.check != nil {
		v, err := l.check(s)
		if err != nil {
			return err
		}
		s = v
	}
	l.values = append(l.values, s)
	return nil
}

func (l *listValue) String() string {
	if len(l.values) == 0 {
		return "" // shows no default in help
	}
	return fmt.Sprintf("%v", l.values)
}
func (l *listValue) Type() string { return "list" }

// checkWith adapts a parser whose result is not a string to a list check.
func checkWith[T any](parse func(string) (T, error)) func(string) (string, error) {
	return func(s string) (string, error) {
		_, err := parse(s)
		return s, err
	}
}

// bytesValue is a size flag (-m 64m); swap also accepts -1.
type bytesValue struct {
	n    int64
	swap bool
}

func (b *bytesValue) Set(s string) error {
	parse := ParseMemory
	if b.swap {
		parse = ParseMemorySwap
	}
	n, err := parse(s)
	if err != nil {
		return err
	}
	b.n = n
	return nil
}

func (b *bytesValue) String() string {
	if b.n <= 0 {
		return strconv.FormatInt(b.n, 10)
	}
	return units.BytesSize(float64(b.n))
}

func (b *bytesValue) Type() string { return "bytes" }

// cpusValue is --cpus in nano CPUs.
type cpusValue int64

func (c *cpusValue) Set(s string) error {
	n, err := ParseCPUs(s)
	if err != nil {
		return err
	}
	*c = cpusValue(n)
	return nil
}

func (c *cpusValue) String() string {
	if *c == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*c)/1e9, 'f', -1, 64)
}

func (c *cpusValue) Type() string { return "decimal" }

// restartValue is --restart.
type restartValue struct {
	raw    string
	policy container.RestartPolicy
}

func (r *restartValue) Set(s string) error {
	p, err := ParseRestartPolicy(s)
	if err != nil {
		return err
	}
	r.raw, r.policy = s, p
	return nil
}

func (r *restartValue) String() string { return r.raw }
func (r *restartValue) Type() string   { return "string" }

// mountsValue is --mount.
type mountsValue struct{ mounts []mount.Mount }

func (m *mountsValue) Set(s string) error {
	mt, err := ParseMount(s)
	if err != nil {
		return err
	}
	m.mounts = append(m.mounts, mt)
	return nil
}

func (m *mountsValue) String() string {
	parts := make([]string, 0, len(m.mounts))
	for _, mt := range m.mounts {
		parts = append(parts, fmt.Sprintf("type=%s,target=%s", mt.Type, mt.Target))
	}
	return strings.Join(parts, " ")
}

func (m *mountsValue) Type() string { return "mount" }

// ulimitsValue is --ulimit.
type ulimitsValue struct{ limits []*container.Ulimit }

func (u *ulimitsValue) Set(s string) error {
	l, err := ParseUlimit(s)
	if err != nil {
		return err
	}
	u.limits = append(u.limits, l)
	return nil
}

func (u *ulimitsValue) String() string {
	if len(u.limits) == 0 {
		return ""
	}
	parts := make([]string, 0, len(u.limits))
	for _, l := range u.limits {
		parts = append(parts, l.String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (u *ulimitsValue) Type() string { return "ulimit" }
