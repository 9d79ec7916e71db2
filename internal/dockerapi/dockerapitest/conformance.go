package dockerapitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// RunConformance checks the parts of the dockerapi.Backend contract the
// API server relies on: error kinds, the ready signals of wait and
// attach, log entries, exec exit codes. Every Backend (the engine, this
// fake) should pass it. newBackend returns a backend that has the image
// "busybox:latest" whose sh, echo, cat and sleep behave like busybox's;
// containers the checks leave behind are removed.
func RunConformance(t *testing.T, newBackend func(t *testing.T) dockerapi.Backend) {
	t.Run("errors", func(t *testing.T) { conformErrors(t, newBackend(t)) })
	t.Run("wait", func(t *testing.T) { conformWait(t, newBackend(t)) })
	t.Run("attach", func(t *testing.T) { conformAttach(t, newBackend(t)) })
	t.Run("logs", func(t *testing.T) { conformLogs(t, newBackend(t)) })
	t.Run("exec", func(t *testing.T) { conformExec(t, newBackend(t)) })
	t.Run("events", func(t *testing.T) { conformEvents(t, newBackend(t)) })
}

func conformCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// conformCreate creates a busybox container running cmd, removed when
// the test ends.
func conformCreate(t *testing.T, b dockerapi.Backend, cfg container.Config) string {
	t.Helper()
	cfg.Image = "busybox:latest"
	res, err := b.ContainerCreate(conformCtx(t), "", container.CreateRequest{Config: &cfg, HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		_ = b.ContainerRemove(context.Background(), res.ID, dockerapi.RemoveOptions{Force: true})
	})
	return res.ID
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
	}
}

func conformErrors(t *testing.T, b dockerapi.Backend) {
	ctx := conformCtx(t)
	const missing = "no-such-container-anywhere"
	_, err := b.ContainerInspect(ctx, missing, false)
	wantKind(t, "inspect of a missing container", err, errdefs.ErrNotFound)
	wantKind(t, "start of a missing container", b.ContainerStart(ctx, missing), errdefs.ErrNotFound)
	_, err = b.ContainerWait(ctx, missing, container.WaitConditionNotRunning, nil)
	wantKind(t, "wait for a missing container", err, errdefs.ErrNotFound)
	wantKind(t, "logs of a missing container", b.ContainerLogs(ctx, missing, dockerapi.LogsOptions{Stdout: true}, func(dockerapi.LogEntry) error { return nil }), errdefs.ErrNotFound)
	wantKind(t, "attach to a missing container", b.ContainerAttach(ctx, missing, dockerapi.AttachOptions{Stream: true}), errdefs.ErrNotFound)
	_, err = b.ExecInspect(ctx, missing)
	wantKind(t, "inspect of a missing exec", err, errdefs.ErrNotFound)
	_, err = b.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "no-such-image:never", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{}})
	wantKind(t, "create from a missing image", err, errdefs.ErrNotFound)

	id := conformCreate(t, b, container.Config{Cmd: []string{"sleep", "300"}})
	wantKind(t, "stop of a created container", b.ContainerStop(ctx, id, dockerapi.StopOptions{}), errdefs.ErrNotModified)
	if err := b.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "start of a running container", b.ContainerStart(ctx, id), errdefs.ErrNotModified)
	wantKind(t, "remove of a running container", b.ContainerRemove(ctx, id, dockerapi.RemoveOptions{}), errdefs.ErrConflict)
	zero := 0
	if err := b.ContainerStop(ctx, id, dockerapi.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "kill of a stopped container", b.ContainerKill(ctx, id, ""), errdefs.ErrConflict)
	wantKind(t, "stop of a stopped container", b.ContainerStop(ctx, id, dockerapi.StopOptions{}), errdefs.ErrNotModified)
}

func conformWait(t *testing.T, b dockerapi.Backend) {
	ctx := conformCtx(t)
	id := conformCreate(t, b, container.Config{Cmd: []string{"sh", "-c", "exit 3"}})
	ready := make(chan struct{})
	type result struct {
		resp container.WaitResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := b.ContainerWait(ctx, id, container.WaitConditionNextExit, ready)
		done <- result{r, err}
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("wait for the next exit returned before the start: %+v, %v", r.resp, r.err)
	}
	if err := b.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.resp.StatusCode != 3 {
		t.Errorf("wait: %+v, %v; want exit code 3", r.resp, r.err)
	}
	// Not running already: at once, with the last exit code.
	ready2 := make(chan struct{})
	resp, err := b.ContainerWait(ctx, id, container.WaitConditionNotRunning, ready2)
	if err != nil || resp.StatusCode != 3 {
		t.Errorf("wait on a stopped container: %+v, %v", resp, err)
	}
	select {
	case <-ready2:
	default:
		t.Error("ready was not closed")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func conformAttach(t *testing.T, b dockerapi.Backend) {
	ctx := conformCtx(t)
	id := conformCreate(t, b, container.Config{OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", "echo start; cat; echo done >&2"}})
	var stdout, stderr syncBuffer
	stdinR, stdinW := io.Pipe()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.ContainerAttach(ctx, id, dockerapi.AttachOptions{Stdin: stdinR, Stdout: &stdout, Stderr: &stderr, Stream: true, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("attach returned before the container started: %v", err)
	}
	if err := b.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := stdinW.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	_ = stdinW.Close() // EOF: with StdinOnce, the container's stdin closes
	if err := <-done; err != nil {
		t.Errorf("attach: %v", err)
	}
	if stdout.String() != "start\ntyped\n" || stderr.String() != "done\n" {
		t.Errorf("attached output %q, %q; want %q, %q", stdout.String(), stderr.String(), "start\ntyped\n", "done\n")
	}
}

func conformLogs(t *testing.T, b dockerapi.Backend) {
	ctx := conformCtx(t)
	run := func(script string) string {
		id := conformCreate(t, b, container.Config{Cmd: []string{"sh", "-c", script}})
		if err := b.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ContainerWait(ctx, id, container.WaitConditionNotRunning, nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	mixed := run("echo one; echo two >&2; echo three")
	plain := run("echo a; echo b; echo c")
	tests := []struct {
		name string
		id   string
		opts dockerapi.LogsOptions
		want string
	}{
		// Across streams the order may differ by a hair; within one it may not.
		{"both", mixed, dockerapi.LogsOptions{Stdout: true, Stderr: true, Tail: "all"}, "stderr:two\n|stdout:one\n|stdout:three\n"},
		{"stdout", mixed, dockerapi.LogsOptions{Stdout: true, Tail: "all"}, "stdout:one\n|stdout:three\n"},
		{"stderr", mixed, dockerapi.LogsOptions{Stderr: true, Tail: "all"}, "stderr:two\n"},
		{"tail", plain, dockerapi.LogsOptions{Stdout: true, Stderr: true, Tail: "2"}, "stdout:b\n|stdout:c\n"},
		{"follow ends with the container", plain, dockerapi.LogsOptions{Stdout: true, Follow: true, Tail: "all"}, "stdout:a\n|stdout:b\n|stdout:c\n"},
		{"until before the start", plain, dockerapi.LogsOptions{Stdout: true, Tail: "all", Until: time.Unix(1, 0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := b.ContainerLogs(ctx, tt.id, tt.opts, func(e dockerapi.LogEntry) error {
				if e.Time.IsZero() {
					t.Errorf("entry %q has no time", e.Line)
				}
				got = append(got, e.Stream+":"+string(e.Line))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "both" {
				slices.Sort(got)
			}
			if strings.Join(got, "|") != tt.want {
				t.Errorf("entries %q, want %q", strings.Join(got, "|"), tt.want)
			}
		})
	}
}

func conformExec(t *testing.T, b dockerapi.Backend) {
	ctx := conformCtx(t)
	id := conformCreate(t, b, container.Config{Cmd: []string{"sleep", "300"}})
	if err := b.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	execID, err := b.ExecCreate(ctx, id, container.ExecCreateRequest{AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	if err := b.ExecStart(ctx, execID, dockerapi.ExecStartOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	ins, err := b.ExecInspect(ctx, execID)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Running || ins.ExitCode == nil || *ins.ExitCode != 4 || ins.ContainerID != id {
		t.Errorf("exec after ExecStart returned: %+v, want exited with 4 in %s", ins, id)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("exec output %q, %q", stdout.String(), stderr.String())
	}
	wantKind(t, "starting an exec twice", b.ExecStart(ctx, execID, dockerapi.ExecStartOptions{Detach: true}), errdefs.ErrConflict)
}

func conformEvents(t *testing.T, b dockerapi.Backend) {
	ctx, cancel := context.WithCancel(conformCtx(t))
	_, live, err := b.Events(ctx, time.Now(), time.Time{}, dockerapi.Filters{"type": {"container"}})
	if err != nil {
		t.Fatal(err)
	}
	id := conformCreate(t, b, container.Config{Cmd: []string{"true"}})
	select {
	case m := <-live:
		if m.Actor.ID != id || m.Action != "create" {
			t.Errorf("first event %+v, want the create of %s", m, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event for the create")
	}
	cancel()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-live:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the event channel was not closed when ctx ended")
		}
	}
}
