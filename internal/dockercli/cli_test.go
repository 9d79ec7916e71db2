package dockercli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// syncBuffer is a bytes.Buffer safe for the streaming goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is what one command line did.
type result struct {
	out, errOut string
	code        int // the exit code the process would end with
	err         error
}

// runCLI runs one command line against host, the way skiff's root
// command would, with stdin as standard input.
func runCLI(t *testing.T, host, stdin string, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands(&Options{Host: host, In: strings.NewReader(stdin), Out: &out, Err: &errOut})...)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	r := result{err: err}
	var se StatusError
	switch {
	case err == nil:
	case errors.As(err, &se):
		r.code = se.StatusCode
	default:
		r.code = -1 // not a StatusError: a bug
	}
	r.out, r.errOut = out.String(), errOut.String()
	return r
}

func TestCommandsAreDockerVerbs(t *testing.T) {
	cmds := Commands(&Options{})
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name())
	}
	want := []string{"run", "create", "start", "stop", "restart", "kill", "rm", "logs", "exec", "attach",
		"top", "stats", "wait", "commit", "export", "rename", "ps", "inspect", "info", "container", "network", "volume", "system"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("commands = %v, want %v", names, want)
	}
	// Every command's flags can be set up (no clashing shorthands).
	root := &cobra.Command{Use: "skiff"}
	root.AddCommand(cmds...)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		_ = c.LocalFlags()
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	sub := map[string][]string{
		"container": {"attach", "commit", "create", "exec", "export", "inspect", "kill", "logs", "ls", "prune", "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "wait"},
		"network":   {"connect", "create", "disconnect", "inspect", "ls", "prune", "rm"},
		"volume":    {"create", "inspect", "ls", "prune", "rm"},
		"system":    {"info"},
	}
	for _, c := range cmds {
		want, ok := sub[c.Name()]
		if !ok {
			continue
		}
		var got []string
		for _, s := range c.Commands() {
			got = append(got, s.Name())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s subcommands = %v, want %v", c.Name(), got, want)
		}
	}
}

func TestHostChoice(t *testing.T) {
	tests := []struct {
		name, flag, opt, env, want string
	}{
		{name: "default", want: DefaultHost},
		{name: "DOCKER_HOST", env: "unix:///env.sock", want: "unix:///env.sock"},
		{name: "options over env", opt: "unix:///opt.sock", env: "unix:///env.sock", want: "unix:///opt.sock"},
		{name: "flag over all", flag: "tcp://127.0.0.1:1", opt: "unix:///opt.sock", env: "unix:///env.sock", want: "tcp://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.env)
			c := &cli{opts: &Options{Host: tt.opt}, host: tt.flag}
			if got := c.daemonHost(); got != tt.want {
				t.Errorf("host = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnreachableEngineIsAnError(t *testing.T) {
	r := runCLI(t, "unix://"+t.TempDir()+"/none.sock", "", "ps")
	if r.code != 1 || !strings.Contains(r.err.Error(), "Cannot connect") && !strings.Contains(r.err.Error(), "failed to connect") {
		t.Fatalf("ps against no engine: code %d, err %v", r.code, r.err)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// equalJSON compares two values by their JSON, so that named and unnamed
// types (and nil and empty) compare as the engine would see them.
func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func TestEveryCommandHasHelp(t *testing.T) {
	var lines [][]string
	var collect func(path []string, c *cobra.Command)
	collect = func(path []string, c *cobra.Command) {
		path = append(slices.Clone(path), c.Name())
		lines = append(lines, append(path, "--help"))
		for _, sub := range c.Commands() {
			collect(path, sub)
		}
	}
	for _, c := range Commands(&Options{}) {
		collect(nil, c)
	}
	for _, args := range lines {
		r := runCLI(t, "tcp://127.0.0.1:1", "", args...)
		if r.err != nil || !strings.Contains(r.out, "Usage:") {
			t.Errorf("%v: %v, output %q", args, r.err, r.out)
		}
	}
}
