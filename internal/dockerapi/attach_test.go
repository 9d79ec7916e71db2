package dockerapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
)

func TestLogsFollow(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.run(t, &container.Config{OpenStdin: true, StdinOnce: true, Cmd: []string{"cat"}}, nil)
	rc, err := ts.Client.ContainerLogs(testContext(t), id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	att, err := ts.Client.ContainerAttach(testContext(t), id, client.ContainerAttachOptions{Stream: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := att.Conn.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	_ = att.CloseWrite()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\ntwo\n" {
		t.Errorf("followed %q, want both lines and then the end", out.String())
	}
}

func TestAttachWithStdin(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.create(t, &container.Config{
		OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", "echo start; cat; echo done >&2"},
	}, nil)
	att, err := ts.Client.ContainerAttach(testContext(t), id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, _ := att.MediaType(); mt != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("media type %q, want multiplexed", mt)
	}
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := att.Conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := att.CloseWrite(); err != nil { // stdin's EOF; output goes on
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatal(err)
	}
	if out.String() != "start\nhello\n" || errOut.String() != "done\n" {
		t.Errorf("attached output %q, %q; want %q, %q", out.String(), errOut.String(), "start\nhello\n", "done\n")
	}
	if code := ts.wait(t, id, container.WaitConditionNotRunning); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestAttachTTYAndErrors(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.create(t, &container.Config{Tty: true, Cmd: []string{"sh", "-c", "echo out; echo err >&2"}}, nil)
	att, err := ts.Client.ContainerAttach(testContext(t), id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, _ := att.MediaType(); mt != "application/vnd.docker.raw-stream" {
		t.Errorf("media type %q, want raw for a TTY", mt)
	}
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(att.Reader)
	if err != nil || string(out) != "out\nerr\n" {
		t.Errorf("read %q, %v; want the raw output", out, err)
	}

	_, err = ts.Client.ContainerAttach(testContext(t), "nope", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("attach to a missing container: %v, want a 404", err)
	}
}

func TestExec(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	id := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)

	t.Run("output and exit code", func(t *testing.T) {
		ex, err := ts.Client.ExecCreate(ctx, id, client.ExecCreateOptions{AttachStdout: true, AttachStderr: true,
			Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
		if err != nil {
			t.Fatal(err)
		}
		att, err := ts.Client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer att.Close()
		var out, errOut bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
			t.Fatal(err)
		}
		if out.String() != "out\n" || errOut.String() != "err\n" {
			t.Errorf("exec output %q, %q", out.String(), errOut.String())
		}
		ins, err := ts.Client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ins.Running || ins.ExitCode != 3 || ins.ContainerID != id {
			t.Errorf("exec inspect %+v, want exited with 3 in %s", ins, id)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		ex, err := ts.Client.ExecCreate(ctx, id, client.ExecCreateOptions{AttachStdin: true, AttachStdout: true, Cmd: []string{"cat"}})
		if err != nil {
			t.Fatal(err)
		}
		att, err := ts.Client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer att.Close()
		_, _ = att.Conn.Write([]byte("piped\n"))
		_ = att.CloseWrite()
		var out bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, io.Discard, att.Reader); err != nil {
			t.Fatal(err)
		}
		if out.String() != "piped\n" {
			t.Errorf("cat echoed %q", out.String())
		}
	})
	t.Run("tty", func(t *testing.T) {
		ex, err := ts.Client.ExecCreate(ctx, id, client.ExecCreateOptions{TTY: true, AttachStdout: true, Cmd: []string{"echo", "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		att, err := ts.Client.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true})
		if err != nil {
			t.Fatal(err)
		}
		defer att.Close()
		if mt, _ := att.MediaType(); mt != "application/vnd.docker.raw-stream" {
			t.Errorf("media type %q", mt)
		}
		out, _ := io.ReadAll(att.Reader)
		if string(out) != "hi\n" {
			t.Errorf("tty exec output %q", out)
		}
	})
	t.Run("detached", func(t *testing.T) {
		ex, err := ts.Client.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: []string{"sh", "-c", "exit 7"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Client.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
			t.Fatal(err)
		}
		for {
			ins, err := ts.Client.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !ins.Running && ins.ExitCode == 7 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("detached exec never finished: %+v", ins)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("resize", func(t *testing.T) {
		ex, err := ts.Client.ExecCreate(ctx, id, client.ExecCreateOptions{TTY: true, Cmd: []string{"sleep", "infinity"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Client.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true, TTY: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Client.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: 40, Width: 120}); err != nil {
			t.Errorf("resize: %v", err)
		}
		resp, body := ts.do(t, "POST", "/exec/"+ex.ID+"/resize?h=x&w=1", nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"h"`) {
			t.Errorf("bad height: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name, path, body string
			want             int
			wantMsg          string
		}{
			{"no command", "/containers/" + id + "/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
			{"unknown field", "/containers/" + id + "/exec", `{"Cmd":["true"],"Bogus":1}`, 400, `unknown field "Bogus"`},
			{"legacy Detach accepted", "/containers/" + id + "/exec", `{"Cmd":["true"],"Detach":false}`, 201, `"Id"`},
			{"missing container", "/containers/nope/exec", `{"Cmd":["true"]}`, 404, "No such container: nope"},
			{"missing exec", "/exec/nope/json", "", 404, "No such exec instance: nope"},
			{"start missing exec", "/exec/nope/start", `{"Detach":true}`, 404, "No such exec instance: nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				method := "POST"
				var body io.Reader
				if tt.body == "" {
					method = "GET"
				} else {
					body = strings.NewReader(tt.body)
				}
				resp, got := ts.do(t, method, tt.path, body, "Content-Type", "application/json")
				if resp.StatusCode != tt.want || !strings.Contains(got, tt.wantMsg) {
					t.Errorf("got %d %s, want %d with %q", resp.StatusCode, got, tt.want, tt.wantMsg)
				}
			})
		}
	})
}

func TestAttachWithoutUpgrade(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.create(t, &container.Config{Cmd: []string{"echo", "old client"}}, nil)
	conn, err := net.Dial("unix", ts.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1.24/containers/%s/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n", id)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" || resp.Header.Get("Api-Version") == "" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, br); err != nil {
		t.Fatal(err)
	}
	if out.String() != "old client\n" {
		t.Errorf("output %q", out.String())
	}
}

// unready is a Backend that never signals that an attach or a wait is
// registered (it follows the contract otherwise).
type unready struct{ *dockerapitest.Backend }

func (u unready) ContainerAttach(ctx context.Context, ref string, opts dockerapi.AttachOptions) error {
	opts.Ready = nil
	return u.Backend.ContainerAttach(ctx, ref, opts)
}

func (u unready) ContainerWait(ctx context.Context, ref string, cond container.WaitCondition, _ chan<- struct{}) (container.WaitResponse, error) {
	return u.Backend.ContainerWait(ctx, ref, cond, nil)
}

// TestUnreadyBackend: without the ready signals the `docker run` flow
// still completes (after a grace period) instead of deadlocking.
func TestUnreadyBackend(t *testing.T) {
	ts := startServer(t, unready{dockerapitest.New()})
	ts.SetReadyGrace(20 * time.Millisecond)
	id := ts.create(t, &container.Config{Cmd: []string{"sh", "-c", "sleep 0.2; echo late"}}, nil)
	att, err := ts.Client.ContainerAttach(testContext(t), id, client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	res := ts.Client.ContainerWait(testContext(t), id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, att.Reader); err != nil || out.String() != "late\n" {
		t.Errorf("output %q, %v", out.String(), err)
	}
	select {
	case r := <-res.Result:
		if r.StatusCode != 0 {
			t.Errorf("exit %d", r.StatusCode)
		}
	case err := <-res.Error:
		t.Fatal(err)
	}
}
