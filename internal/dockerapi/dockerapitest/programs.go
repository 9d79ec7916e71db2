package dockerapitest

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Proc is what a Program runs with.
type Proc struct {
	// Args is argv; Args[0] is the command as given.
	Args []string
	Env  []string
	Tty  bool
	// Stdin ends (EOF) when the attached client closes it, or at once
	// when the container's stdin is not open.
	Stdin io.Reader
	// Stdout and Stderr feed the container's log and attached clients.
	// With a TTY both are the terminal.
	Stdout, Stderr io.Writer
}

// Program is a fake executable. It runs until it is done or ctx ends (the
// container is stopped or killed) and returns its exit code.
type Program func(ctx context.Context, p Proc) int

// builtinPrograms behave enough like busybox's applets for tests.
func builtinPrograms() map[string]Program {
	ps := map[string]Program{
		"echo": func(_ context.Context, p Proc) int {
			args, nl := p.Args[1:], "\n"
			if len(args) > 0 && args[0] == "-n" {
				args, nl = args[1:], ""
			}
			fmt.Fprint(p.Stdout, strings.Join(args, " ")+nl)
			return 0
		},
		"cat": func(ctx context.Context, p Proc) int {
			if _, err := io.Copy(p.Stdout, readerCtx(ctx, p.Stdin)); err != nil {
				return 1
			}
			return 0
		},
		"true":  func(context.Context, Proc) int { return 0 },
		"false": func(context.Context, Proc) int { return 1 },
		"env": func(_ context.Context, p Proc) int {
			for _, e := range p.Env {
				fmt.Fprintln(p.Stdout, e)
			}
			return 0
		},
		"sleep": func(ctx context.Context, p Proc) int {
			d := time.Duration(1<<63 - 1)
			if len(p.Args) > 1 && p.Args[1] != "infinity" {
				f, err := strconv.ParseFloat(p.Args[1], 64)
				if err != nil {
					fmt.Fprintf(p.Stderr, "sleep: invalid number '%s'\n", p.Args[1])
					return 1
				}
				d = time.Duration(f * float64(time.Second))
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return 0
			case <-ctx.Done():
				return 143
			}
		},
		// stderr is not busybox's: it writes its arguments to stderr.
		"stderr": func(_ context.Context, p Proc) int {
			fmt.Fprintln(p.Stderr, strings.Join(p.Args[1:], " "))
			return 0
		},
	}
	ps["top"] = func(ctx context.Context, p Proc) int {
		return ps["sleep"](ctx, Proc{Args: []string{"sleep", "infinity"}, Stderr: p.Stderr})
	}
	ps["sh"] = func(ctx context.Context, p Proc) int { return runShell(ctx, ps, p) }
	return ps
}

// runShell runs `sh -c SCRIPT`: commands separated by ";" or newlines,
// each a program with arguments (quotes group words), optionally ending
// in ">&2"; "exit N" ends the script. Without -c it runs `cat`-like
// nothing: it reads stdin until EOF, like an interactive shell with no
// input.
func runShell(ctx context.Context, progs map[string]Program, p Proc) int {
	if len(p.Args) < 3 || p.Args[1] != "-c" {
		_, _ = io.Copy(io.Discard, readerCtx(ctx, p.Stdin))
		return 0
	}
	code := 0
	for _, cmd := range strings.FieldsFunc(p.Args[2], func(r rune) bool { return r == ';' || r == '\n' }) {
		if ctx.Err() != nil {
			return 143
		}
		words := splitWords(cmd)
		if len(words) == 0 {
			continue
		}
		sub := p
		if last := words[len(words)-1]; last == ">&2" || last == "1>&2" {
			sub.Stdout = p.Stderr
			words = words[:len(words)-1]
		}
		if words[0] == "exit" {
			if len(words) > 1 {
				code, _ = strconv.Atoi(words[1])
			}
			return code
		}
		prog, ok := progs[baseName(words[0])]
		if !ok {
			fmt.Fprintf(p.Stderr, "sh: %s: not found\n", words[0])
			code = 127
			continue
		}
		sub.Args = words
		code = prog(ctx, sub)
	}
	return code
}

// splitWords splits a command line on blanks; single or double quotes
// group words.
func splitWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func baseName(cmd string) string {
	if i := strings.LastIndexByte(cmd, '/'); i >= 0 {
		return cmd[i+1:]
	}
	return cmd
}

// readerCtx makes reads from r end when ctx does (the read in flight is
// abandoned).
func readerCtx(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, len(p))
	ch := make(chan result, 1)
	go func() {
		n, err := c.r.Read(buf)
		ch <- result{n, err}
	}()
	select {
	case res := <-ch:
		copy(p, buf[:res.n])
		return res.n, res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}
