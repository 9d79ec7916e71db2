package dockerapi_test

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// run creates and starts a container with cmd and returns its ID.

func (ts *testServer) run(t *testing.T, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	id := ts.create(t, cfg, hc)
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	return id
}

func (ts *testServer) create(t *testing.T, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	res, err := ts.Client.ContainerCreate(testContext(t), client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res.ID
}

func (ts *testServer) wait(t *testing.T, id string, cond container.WaitCondition) int64 {
	t.Helper()
	res := ts.Client.ContainerWait(testContext(t), id, client.ContainerWaitOptions{Condition: cond})
	select {
	case r := <-res.Result:
		if r.Error != nil {
			t.Fatalf("wait: %s", r.Error.Message)
		}
		return r.StatusCode
	case err := <-res.Error:
		t.Fatalf("wait: %v", err)
	}
	return 0
}

// logs returns a container's stdout and stderr as the client reads them.

func (ts *testServer) logs(t *testing.T, id string, opts client.ContainerLogsOptions) (stdout, stderr string) {
	t.Helper()
	rc, err := ts.Client.ContainerLogs(testContext(t), id, opts)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, rc); err != nil {
		t.Fatalf("demultiplexing logs: %v", err)
	}
	return o.String(), e.String()
}

func TestCreateStartWaitLogs(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.create(t, &container.Config{Cmd: []string{"sh", "-c", "echo out; echo err >&2; echo more; exit 3"}}, nil)
	// Waiting for the next exit before the start, as `docker run` does.
	res := ts.Client.ContainerWait(testContext(t), id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res.Result:
		if r.StatusCode != 3 {
			t.Errorf("exit code %d, want 3", r.StatusCode)
		}
	case err := <-res.Error:
		t.Fatal(err)
	}

	tests := []struct {
		name             string
		opts             client.ContainerLogsOptions
		wantOut, wantErr string
	}{
		{"both", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}, "out\nmore\n", "err\n"},
		{"stdout", client.ContainerLogsOptions{ShowStdout: true}, "out\nmore\n", ""},
		{"stderr", client.ContainerLogsOptions{ShowStderr: true}, "", "err\n"},
		{"tail 1", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "1"}, "more\n", ""},
		{"follow of an exited container ends", client.ContainerLogsOptions{ShowStdout: true, Follow: true}, "out\nmore\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut := ts.logs(t, id, tt.opts)
			if out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("logs = %q, %q; want %q, %q", out, errOut, tt.wantOut, tt.wantErr)
			}
		})
	}

	t.Run("timestamps", func(t *testing.T) {
		out, _ := ts.logs(t, id, client.ContainerLogsOptions{ShowStdout: true, Timestamps: true})
		first, _, _ := strings.Cut(out, "\n")
		ts, line, ok := strings.Cut(first, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !ok || line != "out" {
			t.Errorf("first line %q: want an RFC 3339 time, a space and \"out\" (%v)", first, err)
		}
	})
	t.Run("no stream chosen", func(t *testing.T) {
		resp, body := ts.do(t, "GET", "/containers/"+id+"/logs", nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at least one stream") {
			t.Errorf("got %d %s, want 400 about choosing a stream", resp.StatusCode, body)
		}
	})
	t.Run("content type", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{"/containers/" + id + "/logs?stdout=1", "application/vnd.docker.multiplexed-stream"},
			{"/v1.41/containers/" + id + "/logs?stdout=1", "application/vnd.docker.raw-stream"},
		} {
			resp, _ := ts.do(t, "GET", tc.path, nil)
			if got := resp.Header.Get("Content-Type"); got != tc.want {
				t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.want)
			}
		}
	})
}

func TestLogsTTYAreRaw(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.run(t, &container.Config{Tty: true, Cmd: []string{"sh", "-c", "echo out; echo err >&2"}}, nil)
	ts.wait(t, id, container.WaitConditionNotRunning)
	resp, body := ts.do(t, "GET", "/containers/"+id+"/logs?stdout=1&stderr=1", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.raw-stream" {
		t.Errorf("Content-Type %q, want the raw stream", ct)
	}
	if body != "out\nerr\n" {
		t.Errorf("body %q, want the raw output", body)
	}
}

func TestContainerList(t *testing.T) {
	ts := startServer(t, nil)
	running := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}, Labels: map[string]string{"app": "web"}}, nil)
	exited := ts.run(t, &container.Config{Cmd: []string{"true"}, Labels: map[string]string{"app": "job"}}, nil)
	ts.wait(t, exited, container.WaitConditionNotRunning)
	created := ts.create(t, &container.Config{Cmd: []string{"true"}}, nil)

	tests := []struct {
		name string
		opts client.ContainerListOptions
		want []string
	}{
		{"running only", client.ContainerListOptions{}, []string{running}},
		{"all", client.ContainerListOptions{All: true}, []string{created, exited, running}},
		{"status", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("status", "exited")}, []string{exited}},
		{"label", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "app=job")}, []string{exited}},
		{"label key", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "app")}, []string{exited, running}},
		{"limit", client.ContainerListOptions{Limit: 1}, []string{created}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ts.Client.ContainerList(testContext(t), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range res.Items {
				got = append(got, c.ID)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("legacy filter encoding", func(t *testing.T) {
		resp, body := ts.do(t, "GET", `/containers/json?all=1&filters={"status":["exited"]}`, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, exited) || strings.Contains(body, running) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("bad filters", func(t *testing.T) {
		for _, f := range []string{`{"status":"exited"}`, `[1]`, `{`} {
			resp, body := ts.do(t, "GET", "/containers/json?filters="+f, nil)
			if resp.StatusCode != 400 || !strings.Contains(body, "filters") {
				t.Errorf("filters=%s: got %d %s, want 400", f, resp.StatusCode, body)
			}
		}
	})
	t.Run("empty list is []", func(t *testing.T) {
		_, body := ts.do(t, "GET", `/containers/json?filters={"name":{"nothing-has-this":true}}`, nil)
		if strings.TrimSpace(body) != "[]" {
			t.Errorf("body %q, want []", body)
		}
	})
}

func TestInspectNotFound(t *testing.T) {
	ts := startServer(t, nil)
	_, err := ts.Client.ContainerInspect(testContext(t), "nope", client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Errorf("inspect of a missing container: %v, want not found with Docker's message", err)
	}
	resp, body := ts.do(t, "GET", "/containers/nope/json", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || body != "No such container: nope" {
		t.Errorf("got %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestStartStopKillRemove(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	id := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)

	resp, _ := ts.do(t, "POST", "/containers/"+id+"/start", nil)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("start of a running container: %d, want 304", resp.StatusCode)
	}
	if _, err := ts.Client.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Errorf("the client takes 304 as success: %v", err)
	}
	_, err := ts.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "container is running") {
		t.Errorf("remove of a running container: %v, want a conflict", err)
	}
	timeout := 1
	if _, err := ts.Client.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout, Signal: "SIGINT"}); err != nil {
		t.Fatal(err)
	}
	ins, err := ts.Client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := ins.Container.State; st.Running || st.ExitCode != 130 || ins.Container.RestartCount != 1 {
		t.Errorf("after restart and stop with SIGINT: %+v (restarts %d)", st, ins.Container.RestartCount)
	}
	resp, _ = ts.do(t, "POST", "/containers/"+id+"/stop", nil)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("stop of a stopped container: %d, want 304", resp.StatusCode)
	}
	if _, err := ts.Client.ContainerKill(ctx, id, client.ContainerKillOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("kill of a stopped container: %v, want a conflict", err)
	}
	resp, body := ts.do(t, "POST", "/containers/"+id+"/stop?t=soon", nil)
	if resp.StatusCode != 400 || !strings.Contains(body, `"t"`) {
		t.Errorf("bad timeout: %d %s", resp.StatusCode, body)
	}

	id2 := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	if _, err := ts.Client.ContainerKill(ctx, id2, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	if code := ts.wait(t, id2, ""); code != 137 {
		t.Errorf("killed container's exit code %d, want 137", code)
	}
	if _, err := ts.Client.ContainerRemove(ctx, id2, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.ContainerInspect(ctx, id2, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after remove: %v", err)
	}
}

func TestWaitSendsHeadersFirst(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	req, _ := http.NewRequest("POST", "http://docker/containers/"+id+"/wait?condition=not-running", nil)
	resp, err := ts.HTTP.Do(req) // returns once the headers are in
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := ts.Client.ContainerKill(testContext(t), id, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != `{"StatusCode":137}` {
		t.Errorf("wait body %s", body)
	}

	for _, tc := range []struct{ path, want string }{
		{"/containers/nope/wait", "No such container"},
		{"/containers/" + id + "/wait?condition=sometime", "invalid condition"},
	} {
		resp, body := ts.do(t, "POST", tc.path, nil)
		if resp.StatusCode/100 != 4 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
}

func TestRemovedWait(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.create(t, &container.Config{Cmd: []string{"sh", "-c", "exit 4"}}, &container.HostConfig{AutoRemove: true})
	res := ts.Client.ContainerWait(testContext(t), id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := ts.Client.ContainerStart(testContext(t), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res.Result:
		if r.StatusCode != 4 {
			t.Errorf("status %d, want 4", r.StatusCode)
		}
	case err := <-res.Error:
		t.Fatal(err)
	}
}

func TestContainerMisc(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	id := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)

	t.Run("top", func(t *testing.T) {
		top, err := ts.Client.ContainerTop(ctx, id, client.ContainerTopOptions{Arguments: []string{"-ef"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(top.Titles) == 0 || len(top.Processes) != 1 || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep infinity") {
			t.Errorf("top %+v", top)
		}
	})
	t.Run("stats one-shot", func(t *testing.T) {
		res, err := ts.Client.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: false})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st container.StatsResponse
		if err := jsonDecode(res.Body, &st); err != nil {
			t.Fatal(err)
		}
		if st.ID != id || st.CPUStats.CPUUsage.TotalUsage == 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("stats two samples", func(t *testing.T) {
		_, body := ts.do(t, "GET", "/containers/"+id+"/stats?stream=0", nil)
		var st container.StatsResponse
		if err := jsonDecode(strings.NewReader(body), &st); err != nil {
			t.Fatal(err)
		}
		if st.PreCPUStats.CPUUsage.TotalUsage == 0 || st.PreCPUStats.CPUUsage.TotalUsage >= st.CPUStats.CPUUsage.TotalUsage {
			t.Errorf("want the previous sample in precpu_stats: %+v / %+v", st.PreCPUStats, st.CPUStats)
		}
	})
	t.Run("stats stream", func(t *testing.T) {
		res, err := ts.Client.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		dec := newJSONDecoder(res.Body)
		var prev uint64
		for i := range 3 {
			var st container.StatsResponse
			if err := dec.Decode(&st); err != nil {
				t.Fatal(err)
			}
			if i > 0 && st.PreCPUStats.CPUUsage.TotalUsage != prev {
				t.Errorf("sample %d: precpu %d, want the previous sample's %d", i, st.PreCPUStats.CPUUsage.TotalUsage, prev)
			}
			prev = st.CPUStats.CPUUsage.TotalUsage
		}
	})
	t.Run("resize", func(t *testing.T) {
		if _, err := ts.Client.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: 24, Width: 80}); err != nil {
			t.Error(err)
		}
		resp, _ := ts.do(t, "POST", "/containers/"+id+"/resize?h=-1&w=80", nil)
		if resp.StatusCode != 400 {
			t.Errorf("negative height: %d", resp.StatusCode)
		}
	})
	t.Run("rename", func(t *testing.T) {
		if _, err := ts.Client.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: "renamed"}); err != nil {
			t.Fatal(err)
		}
		ins, err := ts.Client.ContainerInspect(ctx, "renamed", client.ContainerInspectOptions{})
		if err != nil || ins.Container.ID != id {
			t.Errorf("inspect by the new name: %v", err)
		}
		resp, body := ts.do(t, "POST", "/containers/"+id+"/rename?name=bad%20name", nil)
		if resp.StatusCode != 400 || !strings.Contains(body, "Invalid container name") {
			t.Errorf("bad name: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("commit", func(t *testing.T) {
		res, err := ts.Client.ContainerCommit(ctx, id, client.ContainerCommitOptions{
			Reference: "committed:v1", Author: "me", Comment: "snapshot", Changes: []string{`CMD ["echo","committed"]`},
		})
		if err != nil {
			t.Fatal(err)
		}
		img, err := ts.Client.ImageInspect(ctx, "committed:v1")
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != res.ID || img.Author != "me" || strings.Join(img.Config.Cmd, " ") != "echo committed" {
			t.Errorf("committed image %+v", img.InspectResponse)
		}
	})
	t.Run("export", func(t *testing.T) {
		rc, err := ts.Client.ContainerExport(ctx, id, client.ContainerExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		h, err := tar.NewReader(rc).Next()
		if err != nil || h.Name != "etc/hostname" {
			t.Errorf("export tar: %v, %+v", err, h)
		}
	})
	t.Run("archive is not implemented", func(t *testing.T) {
		resp, body := ts.do(t, "GET", "/containers/"+id+"/archive?path=/etc", nil)
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "not implemented") {
			t.Errorf("archive: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("prune", func(t *testing.T) {
		done := ts.run(t, &container.Config{Cmd: []string{"true"}}, nil)
		ts.wait(t, done, "")
		res, err := ts.Client.ContainerPrune(ctx, client.ContainerPruneOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Report.ContainersDeleted) != 1 || res.Report.ContainersDeleted[0] != done {
			t.Errorf("pruned %v, want only %s", res.Report.ContainersDeleted, done)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	ts := startServer(t, nil)
	tests := []struct {
		name, path, body string
		want             int
		wantMsg          string
	}{
		{"ok", "/containers/create?name=c1", `{"Image":"busybox","Cmd":["true"]}`, 201, `"Id"`},
		{"name taken", "/containers/create?name=c1", `{"Image":"busybox","Cmd":["true"]}`, 409, "already in use"},
		{"bad name", "/containers/create?name=-x", `{"Image":"busybox"}`, 400, "Invalid container name (-x)"},
		{"no config", "/containers/create", `{}`, 400, "config cannot be empty"},
		{"unknown field", "/containers/create", `{"Image":"busybox","Cmdd":["true"]}`, 400, `unknown field "Cmdd"`},
		{"unknown nested field", "/containers/create", `{"Image":"busybox","HostConfig":{"Nope":1}}`, 400, `unknown field "Nope"`},
		{"wrong type", "/containers/create", `{"Image":"busybox","Tty":"yes"}`, 400, "cannot unmarshal"},
		{"not JSON", "/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"trailing data", "/containers/create", `{"Image":"busybox","Cmd":["true"]} {}`, 400, "after the JSON value"},
		{"missing image", "/containers/create", `{"Image":"nope","Cmd":["true"]}`, 404, "No such image: nope"},
		{"other platform", "/containers/create?platform=windows/amd64", `{"Image":"busybox","Cmd":["true"]}`, 400, "not supported"},
		{"bad platform", "/containers/create?platform=linux//x", `{"Image":"busybox","Cmd":["true"]}`, 400, "invalid platform"},
		{"own platform", "/containers/create?platform=linux", `{"Image":"busybox","Cmd":["true"]}`, 201, `"Id"`},
		{"legacy fields of API 1.43", "/v1.43/containers/create", `{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:ac:11:00:02","HostConfig":{"KernelMemory":0}}`, 201, `"Id"`},
		{"container-wide MAC on a new API", "/v1.52/containers/create", `{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:ac:11:00:02"}`, 400, "no longer supported"},
		{"too large", "/containers/create", `{"Image":"busybox","Env":["` + strings.Repeat("x", 5<<20) + `"]}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, "POST", tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("got %d %.200s, want %d with %q", resp.StatusCode, body, tt.want, tt.wantMsg)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		resp, body := ts.do(t, "POST", "/containers/create", strings.NewReader(`{"Image":"busybox"}`), "Content-Type", "text/plain")
		if resp.StatusCode != 400 || !strings.Contains(body, "Content-Type") {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("MAC address moves to the endpoint", func(t *testing.T) {
		_, body := ts.do(t, "POST", "/v1.43/containers/create?name=mac", strings.NewReader(`{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:ac:11:00:02"}`), "Content-Type", "application/json")
		if !strings.Contains(body, `"Id"`) {
			t.Fatal(body)
		}
		ins, err := ts.Client.ContainerInspect(testContext(t), "mac", client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ep := ins.Container.NetworkSettings.Networks["bridge"]; ep == nil || ep.MacAddress.String() != "02:42:ac:11:00:02" {
			t.Errorf("bridge endpoint %+v", ep)
		}
	})
}

// TestAttachWithoutUpgrade is the attach of clients that do not ask to

// upgrade: a 200 and then the (still multiplexed) stream on the same

// connection.
