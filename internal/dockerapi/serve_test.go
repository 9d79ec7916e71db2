package dockerapi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
)

// TestServeShutdown ends Serve's context with an event stream, a log
// follower and a hijacked attach open: all of them end and Serve returns.
func TestServeShutdown(t *testing.T) {
	fake := dockerapitest.New()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := dockerapi.New(fake, dockerapi.Options{Logger: testLogger(t), ShutdownTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	c := newClient(t, sock)
	tctx := testContext(t)
	cr, err := c.ContainerCreate(tctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "infinity"}}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.ContainerAttach(tctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := c.ContainerStart(tctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	logs, err := c.ContainerLogs(tctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	ev := c.Events(tctx, client.EventsListOptions{})
	time.Sleep(50 * time.Millisecond) // let the streams settle in

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := io.ReadAll(att.Reader); err != nil {
		t.Logf("attach ended with %v", err)
	}
	if _, err := io.ReadAll(logs); err != nil {
		t.Logf("logs ended with %v", err)
	}
	select {
	case <-ev.Err:
	case <-time.After(10 * time.Second):
		t.Error("the event stream did not end")
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("still accepting connections")
	}
}

// panicky panics where a buggy engine might.
type panicky struct{ *dockerapitest.Backend }

func (panicky) ContainerList(context.Context, dockerapi.ListOptions) ([]container.Summary, error) {
	panic("list exploded")
}

func (panicky) ContainerWait(context.Context, string, container.WaitCondition, chan<- struct{}) (container.WaitResponse, error) {
	panic("wait exploded")
}

func TestPanicsBecome500(t *testing.T) {
	ts := startServer(t, panicky{dockerapitest.New()})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/containers/json"},
		{"POST", "/containers/x/wait"},
	} {
		resp, body := ts.do(t, tc.method, tc.path, nil)
		if resp.StatusCode != 500 {
			t.Errorf("%s %s: %d %s, want 500", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if _, err := ts.Client.Ping(testContext(t), client.PingOptions{}); err != nil {
		t.Errorf("the server is gone after a panic: %v", err)
	}
}

func TestHandlerWithoutServe(t *testing.T) {
	srv := dockerapi.New(dockerapitest.New(), dockerapi.Options{})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/v1.41/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ApiVersion":"`+dockerapi.APIVersion+`"`) {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}
