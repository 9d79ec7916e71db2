package server

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime/crilog"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func entry(sec int, stream string, partial bool, text string) crilog.Entry {
	return crilog.Entry{Time: t0.Add(time.Duration(sec) * time.Second), Stream: stream, Partial: partial, Content: []byte(text)}
}

func writeLogFile(t *testing.T, path string, entries ...crilog.Entry) {
	t.Helper()
	var b []byte
	for _, e := range entries {
		b = crilog.AppendEntry(b, e)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendLog(t *testing.T, path string, e crilog.Entry) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(crilog.AppendEntry(nil, e)); err != nil {
		t.Fatal(err)
	}
}

// logsFixture is a pod whose c1 restarted once (attempt 0 exited,
// attempt 1 runs), whose c2 waits to be created, whose c3 runs without
// a previous instance, and whose c4 runs though the status does not say
// so yet.
func logsFixture(t *testing.T) (fakePods, *fakeRuntime, string) {
	dir := t.TempDir()
	writeLogFile(t, logPath(dir, "c1-0"), entry(0, "stdout", false, "zero"))
	writeLogFile(t, logPath(dir, "c1-1"),
		entry(0, "stdout", false, "one"),
		entry(1, "stderr", false, "two"),
		entry(2, "stdout", true, "thr"),
		entry(2, "stdout", false, "ee"),
		entry(3, "stdout", false, "four"))
	writeLogFile(t, logPath(dir, "c3-0"), entry(0, "stdout", false, "three's"))
	writeLogFile(t, logPath(dir, "c4-0"), entry(0, "stdout", false, "early"))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c1"}, {Name: "c2"}, {Name: "c3"}, {Name: "c4"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "c1", ContainerID: "skiff://id-c1-1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "skiff://id-c1-0", ExitCode: 1}}},
			{Name: "c2", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
			{Name: "c3", ContainerID: "skiff://id-c3-0", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "c4", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		}},
	}
	rt := &fakeRuntime{
		containers: []podruntime.ContainerStatus{
			{ID: "id-c1-0", PodUID: "uid-1", Name: "c1", Attempt: 0, State: podruntime.StateExited, LogPath: logPath(dir, "c1-0")},
			{ID: "id-c1-1", PodUID: "uid-1", Name: "c1", Attempt: 1, State: podruntime.StateRunning, LogPath: logPath(dir, "c1-1")},
			{ID: "id-c3-0", PodUID: "uid-1", Name: "c3", Attempt: 0, State: podruntime.StateRunning, LogPath: logPath(dir, "c3-0")},
			{ID: "id-c4-0", PodUID: "uid-1", Name: "c4", Attempt: 0, State: podruntime.StateRunning, LogPath: logPath(dir, "c4-0")},
		},
		exited: map[string]chan struct{}{"id-c1-1": make(chan struct{})},
	}
	return fakePods{"default/web": pod}, rt, dir
}

func TestLogs(t *testing.T) {
	pods, rt, _ := logsFixture(t)
	ts := startServer(t, pods, rt, nil)
	ts.now = func() time.Time { return t0.Add(3 * time.Second) }
	tests := []struct {
		name, query string
		code        int
		want        string
	}{
		{"everything", "", 200, "one\ntwo\nthree\nfour\n"},
		{"last two lines", "tailLines=2", 200, "ee\nfour\n"},
		{"old tail parameter", "tail=1", 200, "four\n"},
		{"tail all", "tail=all", 200, "one\ntwo\nthree\nfour\n"},
		{"no lines", "tailLines=0", 200, ""},
		{"more lines than there are", "tailLines=100", 200, "one\ntwo\nthree\nfour\n"},
		{"limit bytes", "limitBytes=6", 200, "one\ntw"},
		{"since a time", "sinceTime=2024-05-01T10:00:01Z", 200, "two\nthree\nfour\n"},
		{"since seconds ago", "sinceSeconds=2", 200, "two\nthree\nfour\n"},
		{"timestamps", "timestamps=true&tailLines=1", 200, "2024-05-01T10:00:03.000000000Z four\n"},
		{"timestamps false", "timestamps=false&tailLines=1", 200, "four\n"},
		{"stderr only", "stream=Stderr", 200, "two\n"},
		{"stdout only", "stream=Stdout", 200, "one\nthree\nfour\n"},
		{"the previous instance", "previous=true", 200, "zero\n"},
		{"bad stream", "stream=Both", 400, "stream"},
		{"bad limit", "limitBytes=0", 400, "limitBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.get(t, "/containerLogs/default/web/c1?"+tc.query)
			if code != tc.code || (code == 200 && body != tc.want) || (code != 200 && !strings.Contains(body, tc.want)) {
				t.Errorf("%d %q, want %d %q", code, body, tc.code, tc.want)
			}
		})
	}

	containers := []struct {
		name, path string
		code       int
		want       string
	}{
		{"waiting to be created", "c2", 400, `container "c2" in pod "web" is waiting to start: ContainerCreating`},
		{"no previous instance", "c3?previous=1", 400, `previous terminated container "c3" in pod "web" not found`},
		{"running, before the status says so", "c4", 200, "early\n"},
	}
	for _, tc := range containers {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.get(t, "/containerLogs/default/web/"+tc.path)
			if code != tc.code || (code == 200 && body != tc.want) || (code != 200 && !strings.Contains(body, tc.want)) {
				t.Errorf("%d %q, want %d %q", code, body, tc.code, tc.want)
			}
		})
	}
}

func TestLogsFollow(t *testing.T) {
	pods, rt, dir := logsFixture(t)
	ts := startServer(t, pods, rt, nil)
	tests := []struct {
		name, query string
		first       string // the first line the follower sees
	}{
		{"from the start", "follow=true", "one"},
		{"from the end", "follow=true&tailLines=0", "five"},
		{"from the last line", "follow=true&tailLines=1", "four"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeLogFile(t, logPath(dir, "c1-1"), entry(0, "stdout", false, "one"), entry(3, "stdout", false, "four"))
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.url+"/containerLogs/default/web/c1?"+tc.query, nil)
			resp, err := ts.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			// The response is open before anything is written.
			lines := make(chan string)
			go func() {
				defer close(lines)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- strings.TrimSuffix(l, "\n")
				}
			}()
			next := func() string {
				select {
				case l := <-lines:
					return l
				case <-time.After(10 * time.Second):
					t.Fatal("no line in 10s")
					return ""
				}
			}
			time.Sleep(100 * time.Millisecond) // the reader reached the end
			appendLog(t, logPath(dir, "c1-1"), entry(4, "stdout", false, "five"))
			if got := next(); got != tc.first {
				t.Fatalf("first line %q, want %q", got, tc.first)
			}
			for got := tc.first; got != "five"; got = next() {
			}
		})
	}

	// The container's exit ends a follow once the log is read.
	resp, err := ts.client.Get(ts.url + "/containerLogs/default/web/c1?follow=true&tailLines=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	close(rt.exited["id-c1-1"])
	done := make(chan string)
	go func() { b, _ := io.ReadAll(resp.Body); done <- string(b) }()
	select {
	case got := <-done:
		if got != "five\n" {
			t.Errorf("after the exit: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not end with the container")
	}
}
