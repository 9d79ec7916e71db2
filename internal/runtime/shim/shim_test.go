package shim

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{"success", "exit 0", 0},
		{"code", "exit 3", 3},
		{"SIGTERM", "kill -TERM $$", 143},
		{"SIGKILL", "kill -KILL $$", 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tt.script)
			err := cmd.Run()
			if got := exitCode(cmd.ProcessState, err); got != tt.want {
				t.Errorf("exitCode = %d, want %d", got, tt.want)
			}
		})
	}
	if got := exitCode(nil, errors.New("wait failed")); got != 255 {
		t.Errorf("unknown exit = %d, want 255", got)
	}
}

func TestStartError(t *testing.T) {
	tests := []struct {
		msg     string
		invalid bool
	}{
		{`unable to start container process: error during container init: exec: "nope": executable file not found in $PATH`, true},
		{`unable to start container process: error during container init: exec: "/x": stat /x: no such file or directory`, true},
		{`unable to apply cgroup configuration: mkdir /sys/fs/cgroup/x: permission denied`, false},
	}
	for _, tt := range tests {
		err := startError("c1", errors.New(tt.msg))
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q lost the message: %v", tt.msg, err)
		}
		if errors.Is(err, errdefs.ErrInvalid) != tt.invalid {
			t.Errorf("%q: invalid = %v, want %v", tt.msg, !tt.invalid, tt.invalid)
		}
	}
}

func TestNewProcess(t *testing.T) {
	p, err := newProcess(&specs.Process{
		Args:        []string{"sh"},
		User:        specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5, 6}},
		Rlimits:     []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 5}},
		ConsoleSize: &specs.Box{Width: 80, Height: 24},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != 1000 || p.GID != 100 || fmt.Sprint(p.AdditionalGroups) != "[5 6]" || p.Cwd != "/" ||
		len(p.Rlimits) != 1 || p.Rlimits[0].Type != unix.RLIMIT_NOFILE || p.ConsoleWidth != 80 || p.ConsoleHeight != 24 {
		t.Errorf("converted %+v", p)
	}
	_, err = newProcess(&specs.Process{Args: []string{"sh"}, Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown rlimit: %v, want ErrInvalid", err)
	}
}

// fakeConn records frames, or fails every write.
type fakeConn struct {
	mu   sync.Mutex
	data strings.Builder
	fail bool
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return 0, errors.New("broken pipe")
	}
	c.data.Write(p)
	return len(p), nil
}

func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func frame(k wire.Kind, s string) []byte {
	var b strings.Builder
	wire.WriteFrame(&b, k, []byte(s))
	return []byte(b.String())
}

func TestBroadcaster(t *testing.T) {
	var b broadcaster
	both, onlyErr, broken := &fakeConn{}, &fakeConn{}, &fakeConn{fail: true}
	subBoth, subErr, subBroken := newSubscriber(both, true, true), newSubscriber(onlyErr, false, true), newSubscriber(broken, true, true)
	for _, s := range []*subscriber{subBoth, subErr, subBroken} {
		if !b.add(s) {
			t.Fatal("add refused")
		}
	}
	b.broadcast(wire.KindStdout, frame(wire.KindStdout, "out"))
	b.broadcast(wire.KindStderr, frame(wire.KindStderr, "err"))
	if both.data.String() != string(frame(wire.KindStdout, "out"))+string(frame(wire.KindStderr, "err")) {
		t.Errorf("both got %q", both.data.String())
	}
	if onlyErr.data.String() != string(frame(wire.KindStderr, "err")) {
		t.Errorf("stderr-only got %q", onlyErr.data.String())
	}
	select {
	case <-subBroken.gone:
	default:
		t.Error("a client whose writes fail is not detached")
	}
	b.end()
	for _, s := range []*subscriber{subBoth, subErr} {
		select {
		case <-s.gone:
		default:
			t.Error("end did not detach a client")
		}
	}
	if b.add(newSubscriber(&fakeConn{}, true, true)) {
		t.Error("add accepted a client after the end")
	}
}

// eioReader returns its chunks, then EIO (a terminal without a slave)
// until more is appended.
type eioReader struct {
	mu     sync.Mutex
	chunks []string
}

func (r *eioReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.chunks) == 0 {
		return 0, unix.EIO
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func (r *eioReader) add(s string) {
	r.mu.Lock()
	r.chunks = append(r.chunks, s)
	r.mu.Unlock()
}

func TestPumpConsoleReadsPastEIO(t *testing.T) {
	r := &eioReader{chunks: []string{"a"}}
	exited := make(chan struct{})
	var mu sync.Mutex
	var got strings.Builder
	done := make(chan struct{})
	go func() {
		pumpConsole(r, exited, func(f []byte) {
			mu.Lock()
			got.Write(f[wire.HeaderSize:])
			mu.Unlock()
		})
		close(done)
	}()
	time.Sleep(3 * consoleRetry) // EIO while the process runs is not the end
	r.add("b")
	time.Sleep(3 * consoleRetry)
	r.add("c") // written just before the exit
	close(exited)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pump did not end after the exit")
	}
	if got.String() != "abc" {
		t.Errorf("pumped %q, want abc", got.String())
	}
}
