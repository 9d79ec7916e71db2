package dockerapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"skiff.dev/skiff/internal/dockerapi"
)

func TestPing(t *testing.T) {
	ts := startServer(t, nil)
	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			resp, body := ts.do(t, method, "/_ping", nil)
			want := map[string]string{
				"Api-Version": dockerapi.APIVersion, "Ostype": "linux", "Docker-Experimental": "false",
				"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if wantBody := map[string]string{"GET": "OK", "HEAD": ""}[method]; resp.StatusCode != 200 || body != wantBody {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
		})
	}
	p, err := ts.Client.Ping(testContext(t), client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != dockerapi.APIVersion || p.OSType != "linux" || p.BuilderVersion != "1" || p.Experimental {
		t.Errorf("ping %+v", p)
	}
}

func TestVersionNegotiation(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)

	t.Run("negotiated", func(t *testing.T) {
		c := newClient(t, ts.Socket, client.WithAPIVersionNegotiation())
		v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.APIVersion != dockerapi.APIVersion || v.MinAPIVersion != dockerapi.MinAPIVersion || v.Version != "0.1.0-test" {
			t.Errorf("version %+v", v)
		}
		if c.ClientVersion() != client.MaxAPIVersion {
			t.Errorf("negotiated %s, want %s (the client's newest, which we serve)", c.ClientVersion(), client.MaxAPIVersion)
		}
	})
	t.Run("pinned 1.41", func(t *testing.T) {
		var paths []string
		c := newClient(t, ts.Socket, client.WithAPIVersion("1.41"), client.WithHTTPRequestHook(func(r *http.Request) error {
			paths = append(paths, r.URL.Path)
			return nil
		}))
		res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Items == nil || len(paths) != 1 || paths[0] != "/v1.41/containers/json" {
			t.Errorf("requests %v, items %v", paths, res.Items)
		}
		id := ts.run(t, &container.Config{Cmd: []string{"echo", "old"}}, nil)
		ts.wait(t, id, "")
		resp, body := ts.do(t, "GET", "/v1.41/containers/"+id+"/logs?stdout=1", nil)
		if resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" || !strings.HasSuffix(body, "old\n") {
			t.Errorf("API 1.41 logs: %q %q", resp.Header.Get("Content-Type"), body)
		}
	})

	tests := []struct {
		name, path string
		want       int
		wantMsg    string
	}{
		{"too new", "/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is " + dockerapi.APIVersion},
		{"too old", "/v1.12/version", 400, "client version 1.12 is too old"},
		{"garbage version", "/v1.2.3/version", 400, "invalid API version"},
		{"oldest", "/v1.24/version", 200, `"ApiVersion":"` + dockerapi.APIVersion + `"`},
		{"newest", "/v" + dockerapi.APIVersion + "/version", 200, `"Os":"linux"`},
		{"unknown path", "/v1.41/nothing/here", 404, "page not found"},
		{"wrong method", "/containers/json", 404, "page not found"},
		{"empty name", "/containers//json", 404, "page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if tt.name == "wrong method" {
				method = "PUT"
			}
			resp, body := ts.do(t, method, tt.path, nil)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tt.want, tt.wantMsg)
			}
			if resp.Header.Get("Api-Version") != dockerapi.APIVersion {
				t.Errorf("Api-Version header %q", resp.Header.Get("Api-Version"))
			}
		})
	}
}

func TestInfo(t *testing.T) {
	ts := startServer(t, nil)
	ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	res, err := ts.Client.Info(testContext(t), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := res.Info
	if in.ContainersRunning != 1 || in.ServerVersion != "0.1.0-test" || in.KernelVersion != "6.1.0-test" || in.OSType != "linux" {
		t.Errorf("info %+v", in)
	}
}

func TestEvents(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	before := ts.run(t, &container.Config{Cmd: []string{"true"}}, nil)
	ts.wait(t, before, "")

	t.Run("since, then live", func(t *testing.T) {
		ectx, cancel := contextWithCancel(ctx)
		defer cancel()
		since := time.Now()
		ev := ts.Client.Events(ectx, client.EventsListOptions{
			Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
			Filters: make(client.Filters).Add("type", "container"),
		})
		id := ts.run(t, &container.Config{Cmd: []string{"true"}}, nil)
		var got []string
		for len(got) < 3 {
			select {
			case m := <-ev.Messages:
				got = append(got, string(m.Action))
				if m.Actor.ID != id || m.Type != events.ContainerEventType {
					t.Errorf("event %+v", m)
				}
			case err := <-ev.Err:
				t.Fatal(err)
			}
		}
		if strings.Join(got, ",") != "create,start,die" {
			t.Errorf("actions %v", got)
		}
	})
	t.Run("without since only new events", func(t *testing.T) {
		ectx, cancel := contextWithCancel(ctx)
		defer cancel()
		ev := ts.Client.Events(ectx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container")})
		for { // until the subscription is in place
			in, err := ts.Client.Info(ctx, client.InfoOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if in.Info.NEventsListener > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		id := ts.run(t, &container.Config{Cmd: []string{"true"}}, nil)
		select {
		case m := <-ev.Messages:
			if m.Actor.ID != id || m.Action != events.ActionCreate {
				t.Errorf("first event %+v, want the create of %s (and nothing older)", m, id)
			}
		case err := <-ev.Err:
			t.Fatal(err)
		}
	})
	t.Run("past only", func(t *testing.T) {
		until := time.Now()
		resp, body := ts.do(t, "GET", fmt.Sprintf("/events?since=0&until=%d.%09d&filters=%s", until.Unix(), until.Nanosecond(),
			`{"event":["create"],"container":{"`+before+`":true}}`), nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jsonl" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(strings.NewReader(body))
		n := 0
		for sc.Scan() {
			var m events.Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m.Action != events.ActionCreate || m.Actor.ID != before {
				t.Errorf("event %+v", m)
			}
			n++
		}
		if n != 1 {
			t.Errorf("%d events, want 1:\n%s", n, body)
		}
	})
	t.Run("legacy fields before API 1.52", func(t *testing.T) {
		resp, body := ts.do(t, "GET", fmt.Sprintf("/v1.50/events?since=0&until=%d&filters=%s", time.Now().Unix()+1,
			`{"event":{"start":true},"container":{"`+before+`":true}}`), nil)
		if resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"status":"start","id":"`+before+`","from":"busybox"`) {
			t.Errorf("got %q %s", resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("bad times", func(t *testing.T) {
		for _, q := range []string{"since=yesterday", "until=1.x", "since=20&until=10"} {
			resp, _ := ts.do(t, "GET", "/events?"+q, nil)
			if resp.StatusCode != 400 {
				t.Errorf("%s: %d, want 400", q, resp.StatusCode)
			}
		}
	})
}
