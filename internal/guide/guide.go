// Package guide reads the runnable steps out of a Markdown guide
// (docs/getting-started.md) so an end-to-end test can run exactly the
// commands a newcomer reads and check the output the guide promises. The
// guide then cannot rot: a command that stops working, or output that
// changes, fails the test.
//
// The format is plain Markdown. A fenced block whose info string is
// "console" is a step: lines starting with "$ " are commands (a trailing
// backslash continues a command on the next line), the other lines are
// the output the guide shows. An HTML comment right before the block may
// carry directives:
//
//	<!-- guide: retry=60s -->   run the block's commands again until the output matches (or 60s pass)
//	<!-- guide: skip -->        show it, never run it (interactive or endless commands)
//
// Expected lines match output lines in order, not necessarily adjacent.
// In an expected line "..." matches anything, a <placeholder> in angle
// brackets matches one word, and runs of spaces match any white space; an
// output block may be shortened with a line of "...".
//
// Only test code imports this package.
package guide

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Step is one console block of the guide.
type Step struct {
	Line     int // where the block starts in the guide, for messages
	Commands []Command
	Skip     bool
	Retry    time.Duration
}

// Command is one command with the output the guide shows after it.
type Command struct {
	Text   string
	Expect []string // expected lines, as written
}

var directive = regexp.MustCompile(`^<!--\s*guide:\s*(.*?)\s*-->$`)

// Parse reads the steps of a guide.
func Parse(r io.Reader) ([]Step, error) {
	var (
		steps   []Step
		pending Step // directives seen before the next block
		cur     *Step
		cont    bool // the last command line ended in a backslash
		n       int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			switch {
			case strings.HasPrefix(trimmed, "```console"):
				pending.Line = n
				cur = &pending
			case directive.MatchString(trimmed):
				if err := pending.apply(directive.FindStringSubmatch(trimmed)[1]); err != nil {
					return nil, fmt.Errorf("line %d: %w", n, err)
				}
			case trimmed != "":
				pending = Step{}
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			if cont {
				return nil, fmt.Errorf("line %d: the block ends inside a continued command", n)
			}
			if len(cur.Commands) == 0 {
				return nil, fmt.Errorf("line %d: console block without a command", cur.Line)
			}
			steps = append(steps, *cur)
			cur, pending = nil, Step{}
			continue
		}
		switch {
		case cont:
			c := &cur.Commands[len(cur.Commands)-1]
			c.Text += "\n" + line
			cont = strings.HasSuffix(line, `\`)
		case strings.HasPrefix(line, "$ "):
			cur.Commands = append(cur.Commands, Command{Text: line[2:]})
			cont = strings.HasSuffix(line, `\`)
		case len(cur.Commands) == 0:
			if trimmed != "" {
				return nil, fmt.Errorf("line %d: output before the block's first command", n)
			}
		case trimmed != "":
			c := &cur.Commands[len(cur.Commands)-1]
			c.Expect = append(c.Expect, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: console block never closed", cur.Line)
	}
	return steps, nil
}

func (s *Step) apply(directives string) error {
	for _, d := range strings.Fields(directives) {
		key, value, _ := strings.Cut(d, "=")
		switch key {
		case "skip":
			s.Skip = true
		case "retry":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return fmt.Errorf("guide directive retry=%q: want a positive duration", value)
			}
			s.Retry = d
		default:
			return fmt.Errorf("unknown guide directive %q", key)
		}
	}
	return nil
}

var placeholder = regexp.MustCompile(`<[A-Za-z][A-Za-z0-9_-]*>`)

// pattern turns an expected line into a regexp over one output line.
func pattern(expect string) (*regexp.Regexp, error) {
	expect = strings.ToValidUTF8(expect, "\uFFFD")
	var b strings.Builder
	b.WriteString(`^\s*`)
	for i, part := range strings.Split(strings.TrimSpace(expect), "...") {
		if i > 0 {
			b.WriteString(`.*`)
		}
		last := 0
		for _, loc := range placeholder.FindAllStringIndex(part, -1) {
			b.WriteString(literal(part[last:loc[0]]))
			b.WriteString(`\S+`)
			last = loc[1]
		}
		b.WriteString(literal(part[last:]))
	}
	b.WriteString(`\s*$`)
	return regexp.Compile(b.String())
}

var spaces = regexp.MustCompile(`\s+`)

func literal(s string) string {
	words := spaces.Split(s, -1)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(words, `\s+`)
}

// Match checks that every expected line matches an output line, in order.
// It returns a description of the first expected line it could not find.
func Match(expect []string, output string) error {
	lines := strings.Split(strings.TrimRight(strings.ToValidUTF8(output, "\uFFFD"), "\n"), "\n")
	i := 0
	for _, e := range expect {
		if strings.TrimSpace(e) == "..." {
			continue
		}
		re, err := pattern(e)
		if err != nil {
			return fmt.Errorf("expected line %q: %w", strings.TrimSpace(e), err)
		}
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			return fmt.Errorf("no output line matches %q (in order)", strings.TrimSpace(e))
		}
		i++
	}
	return nil
}
