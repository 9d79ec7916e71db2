package dockercli

import (
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// openPty gives a terminal for the command to use (the slave) and the
// side the test types on (the master).
func openPty(t *testing.T) (console.Console, *os.File) {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", slavePath, err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// waitFor polls the engine's request log until one matches.
func waitFor(t *testing.T, f *fakeEngine, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.ContainsFunc(f.requestLog(), func(s string) bool { return strings.Contains(s, what) }) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no request with %q in %v", what, f.requestLog())
}

func TestRunInteractiveTTY(t *testing.T) {
	master, slave := openPty(t)
	if err := master.Resize(console.WinSize{Height: 40, Width: 100}); err != nil {
		t.Fatal(err)
	}
	before, err := term.SaveState(slave.Fd())
	if err != nil {
		t.Fatal(err)
	}
	go func() { // drain what the command writes to the terminal
		buf := make([]byte, 1024)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()

	f := newFakeEngine(t)
	var errOut syncBuffer
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands(&Options{Host: f.host(), In: slave, Out: slave, Err: &errOut})...)
	root.SetArgs([]string{"run", "-it", "busybox", "cat"})
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { done <- root.ExecuteContext(ctx) }()

	waitFor(t, f, "/resize?h=40&w=100")
	if err := master.Resize(console.WinSize{Height: 50, Width: 120}); err != nil {
		t.Fatal(err)
	}
	// The kernel signals the terminal's foreground group, which the test
	// is not; send the window change ourselves.
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "/resize?h=50&w=120")

	if _, err := master.Write([]byte("typed\r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.logged("typed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !f.logged("typed") {
		t.Fatal("typed input never reached the container")
	}
	if _, err := master.Write([]byte{16, 17}); err != nil { // ctrl-p ctrl-q
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run -it ended with %v after detaching (stderr %q)", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the detach keys did not detach")
	}
	after, err := term.SaveState(slave.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("the terminal was left in raw mode")
	}
	f.mu.Lock()
	req := f.creates[0]
	f.mu.Unlock()
	if !req.Tty || !req.OpenStdin || !req.AttachStdin || req.HostConfig.ConsoleSize != [2]uint{40, 100} {
		t.Errorf("create: tty %v stdin %v/%v console %v", req.Tty, req.OpenStdin, req.AttachStdin, req.HostConfig.ConsoleSize)
	}
}

// logged reports whether any container wrote text.
func (f *fakeEngine) logged(text string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		for _, l := range c.logs {
			if strings.Contains(l.text, text) {
				return true
			}
		}
	}
	return false
}
