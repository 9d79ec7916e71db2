package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// syncBuffer is a buffer written by a stream and read by the test; it can
// signal when it contains a string.
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func waitFor(s string) *syncBuffer { return &syncBuffer{want: s, seen: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, _ := b.buf.Write(p)
	if b.seen != nil && strings.Contains(b.buf.String(), b.want) {
		close(b.seen)
		b.seen = nil
	}
	return n, nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// await waits until the buffer contains its wanted string.
func (b *syncBuffer) await(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	seen := b.seen
	b.mu.Unlock()
	if seen == nil {
		return
	}
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
		t.Fatalf("never got %q; got %q", b.want, b.String())
	}
}

// attach runs Attach in the background; the returned channel has its
// result.
func attach(rt *runtime.Runtime, ctx context.Context, id string, s runtime.Streams) <-chan error {
	done := make(chan error, 1)
	go func() { done <- rt.Attach(ctx, id, s) }()
	return done
}

func awaitErr(t testing.TB, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestAttachLiveOutput(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	e.start(e.spec(id, "sh", "-c", "while :; do echo tick; echo tock >&2; sleep 0.05; done"), id, runtime.StartRequest{})
	ctx := context.Background()
	stdout, stderr := waitFor("tick\ntick\n"), waitFor("tock\ntock\n")
	done := attach(e.rt, ctx, id, runtime.Streams{Stdout: stdout, Stderr: stderr})
	stdout.await(t)
	stderr.await(t)
	if strings.Contains(stdout.String(), "tock") || strings.Contains(stderr.String(), "tick") {
		t.Errorf("streams mixed: stdout %q, stderr %q", stdout, stderr)
	}
	// A second client sees the output too.
	ctx2, cancel := context.WithCancel(ctx)
	second := waitFor("tick\n")
	done2 := attach(e.rt, ctx2, id, runtime.Streams{Stdout: second})
	second.await(t)
	cancel()
	if err := awaitErr(t, done2, "canceled Attach"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Attach = %v", err)
	}
	if err := e.rt.Kill(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := awaitErr(t, done, "Attach"); err != nil {
		t.Errorf("Attach after the exit = %v, want nil", err)
	}
	if err := e.rt.Attach(ctx, id, runtime.Streams{Stdout: io.Discard}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Attach to an exited container = %v, want ErrConflict", err)
	}
}

func TestAttachStdinOnce(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	c := e.start(e.spec(id, "cat"), id, runtime.StartRequest{OpenStdin: true, StdinOnce: true})
	var out syncBuffer
	// The stdin ends: cat's stdin is closed, cat exits after echoing it.
	err := e.rt.Attach(context.Background(), id, runtime.Streams{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\nworld\n" {
		t.Errorf("attached output %q", out.String())
	}
	if st := e.wait(id); st.Code != 0 {
		t.Errorf("exit %d", st.Code)
	}
	if got := logText(logEntries(t, c.log)); got != "stdout F hello\nstdout F world\n" {
		t.Errorf("log %q", got)
	}
}

func TestAttachStdinKeptOpen(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	e.start(e.spec(id, "cat"), id, runtime.StartRequest{OpenStdin: true})
	ctx := context.Background()
	for _, word := range []string{"one", "two"} {
		in, inW := io.Pipe()
		out := waitFor(word + "\n")
		done := attach(e.rt, ctx, id, runtime.Streams{Stdin: in, Stdout: out})
		inW.Write([]byte(word + "\n"))
		out.await(t)
		// Without StdinOnce, the end of the client's stdin ends its attach
		// and the container keeps running.
		inW.Close()
		if err := awaitErr(t, done, "Attach"); err != nil {
			t.Fatal(err)
		}
		if s, err := e.rt.State(ctx, id); err != nil || !s.Running {
			t.Fatalf("State after detaching = %+v, %v", s, err)
		}
	}
}

func TestTerminal(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	spec := e.spec(id, "sh", "-c", "tty; echo hi")
	c := e.start(spec, id, runtime.StartRequest{Terminal: true, HoldUntilAttach: true})
	var out syncBuffer
	// Held until attached: the client sees the output from its start.
	if err := e.rt.Attach(context.Background(), id, runtime.Streams{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "/dev/pts/0\r\nhi\r\n" {
		t.Errorf("terminal output %q", got)
	}
	if st := e.wait(id); st.Code != 0 {
		t.Errorf("exit %d", st.Code)
	}
	if got := logText(logEntries(t, c.log)); got != "stdout F /dev/pts/0\nstdout F hi\n" {
		t.Errorf("log %q", got)
	}
}

func TestTerminalResize(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	e.start(e.spec(id, "sh", "-c", "read x; stty size"), id, runtime.StartRequest{Terminal: true, OpenStdin: true})
	ctx := context.Background()
	if err := e.rt.Resize(ctx, id, 100, 40); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	in, inW := io.Pipe()
	defer inW.Close()
	out := waitFor("40 100")
	done := attach(e.rt, ctx, id, runtime.Streams{Stdin: in, Stdout: out})
	inW.Write([]byte("\n"))
	out.await(t)
	if err := awaitErr(t, done, "Attach"); err != nil {
		t.Fatal(err)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	id := containerID(t)
	e.start(e.spec(id, "sleep", "1000"), id, runtime.StartRequest{})
	proc := func(args ...string) specs.Process {
		return specs.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/"}
	}
	tests := []struct {
		name       string
		process    specs.Process
		stdin      string
		code       int
		wantOut    string // contained in stdout
		wantErrOut string
	}{
		{"ps sees the container", proc("ps", "-o", "pid,args"), "", 0, "1 sleep 1000", ""},
		{"exit code", proc("sh", "-c", "exit 7"), "", 7, "", ""},
		{"stdin", proc("cat"), "abc\n", 0, "abc\n", ""},
		{"stderr", proc("sh", "-c", "echo e >&2"), "", 0, "", "e\n"},
		{"cwd and env", specs.Process{Args: []string{"sh", "-c", "pwd; echo $FOO"}, Env: []string{"PATH=/bin", "FOO=bar"}, Cwd: "/tmp"}, "", 0, "/tmp\nbar\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut syncBuffer
			s := runtime.Streams{Stdout: &out, Stderr: &errOut}
			if tt.stdin != "" {
				s.Stdin = strings.NewReader(tt.stdin)
			}
			pid := 0
			code, err := e.rt.Exec(context.Background(), id, runtime.ExecRequest{
				ExecID: tt.name, Process: tt.process, Streams: s, Started: func(p int) { pid = p },
			})
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || pid <= 0 {
				t.Errorf("code %d pid %d, want code %d", code, pid, tt.code)
			}
			if !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errOut.String(), tt.wantErrOut) {
				t.Errorf("stdout %q stderr %q, want %q and %q", out.String(), errOut.String(), tt.wantOut, tt.wantErrOut)
			}
			if tt.name == "ps sees the container" {
				// The header, sleep (pid 1) and ps: only the container's.
				if n := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; n != 3 {
					t.Errorf("ps printed %d lines, want 3:\n%s", n, out.String())
				}
			}
		})
	}

	t.Run("missing executable", func(t *testing.T) {
		_, err := e.rt.Exec(context.Background(), id, runtime.ExecRequest{Process: proc("nope")})
		if err == nil || !strings.Contains(err.Error(), `exec: "nope": executable file not found in $PATH`) {
			t.Errorf("Exec = %v, want libcontainer's message", err)
		}
	})

	t.Run("terminal and resize", func(t *testing.T) {
		p := proc("sh", "-c", "tty; while :; do stty size; sleep 0.05; done")
		p.Terminal = true
		out := waitFor("40 100")
		resize := make(chan [2]uint16, 1)
		resize <- [2]uint16{100, 40}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := e.rt.Exec(ctx, id, runtime.ExecRequest{Process: p, Streams: runtime.Streams{Stdout: out}, Resize: resize})
			done <- err
		}()
		out.await(t)
		if !strings.HasPrefix(out.String(), "/dev/pts/") {
			t.Errorf("output %q, want a terminal", out.String())
		}
		cancel()
		if err := awaitErr(t, done, "Exec"); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled Exec = %v", err)
		}
	})

	if err := e.rt.Kill(context.Background(), id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.wait(id)
	if _, err := e.rt.Exec(context.Background(), id, runtime.ExecRequest{Process: proc("true")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Exec in an exited container = %v, want ErrConflict", err)
	}
}
