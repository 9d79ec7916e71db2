package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime/crilog"
)

// timestampFormat prefixes lines with --timestamps (the kubelet's
// RFC3339NanoFixed: nanoseconds always nine digits).
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logOptions are the kubelet's containerLogs query parameters
// (v1.PodLogOptions).
type logOptions struct {
	follow, previous, timestamps bool
	tail                         int64 // lines from the end; -1 all
	limit                        int64 // bytes; -1 unlimited
	since                        time.Time
	stdout, stderr               bool
}

// parseLogOptions reads the query as the kubelet does, "tail" (all or a
// number) included for old clients.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	o := logOptions{
		follow: isTrue(q, "follow"), previous: isTrue(q, "previous"), timestamps: isTrue(q, "timestamps"),
		tail: -1, limit: -1, stdout: true, stderr: true,
	}
	if t := q.Get("tail"); t != "" && t != "all" && !q.Has("tailLines") {
		q.Set("tailLines", t)
	}
	num := func(key string, min int64) (int64, bool, error) {
		v := q.Get(key)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return 0, false, fmt.Errorf("%s: %q is not an integer of at least %d", key, v, min)
		}
		return n, true, nil
	}
	if n, ok, err := num("tailLines", 0); err != nil {
		return o, err
	} else if ok {
		o.tail = n
	}
	if n, ok, err := num("limitBytes", 1); err != nil {
		return o, err
	} else if ok {
		o.limit = n
	}
	secs, hasSecs, err := num("sinceSeconds", 1)
	if err != nil {
		return o, err
	}
	if hasSecs {
		o.since = now.Add(-time.Duration(min(secs, int64(time.Duration(1<<62)/time.Second))) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if hasSecs {
			return o, errors.New("at most one of sinceTime or sinceSeconds may be specified")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, fmt.Errorf("sinceTime: %q is not an RFC 3339 time", v)
		}
		o.since = t
	}
	switch s := q.Get("stream"); s {
	case "", string(corev1.LogStreamAll):
	case string(corev1.LogStreamStdout):
		o.stderr = false
	case string(corev1.LogStreamStderr):
		o.stdout = false
	default:
		return o, fmt.Errorf("stream: %q is not one of All, Stdout, Stderr", s)
	}
	return o, nil
}

// isTrue reads a boolean parameter as the API machinery does: present
// and neither "false" nor "0".
func isTrue(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	return v[0] != "0" && !strings.EqualFold(v[0], "false")
}

// serveLogs answers GET /containerLogs/{namespace}/{pod}/{container}
// with the container's log as plain text. Errors are plain text too, as
// the kubelet's (the API server turns them into Status objects).
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	opts, err := parseLogOptions(r.URL.Query(), s.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, err := s.findPod(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	name := r.PathValue("container")
	if !hasContainer(pod, name) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", name, pod.Name), http.StatusNotFound)
		return
	}
	c, err := s.logTarget(r.Context(), pod, name, opts.previous)
	if err != nil {
		code := http.StatusBadRequest
		var se *statusError
		if errors.As(err, &se) {
			code = int(se.st.Code)
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok && opts.follow {
		f.Flush() // the client sees the stream open before the first line
	}
	if err := s.writeLog(r.Context(), w, c, opts); err != nil {
		s.log.Debug("log stream ended", "pod", pod.Namespace+"/"+pod.Name, "container", name, "err", err)
	}
}

// logTarget picks the container instance whose log to send, as the
// kubelet does from the pod's status: the current instance (or the last
// terminated one while the next has not started), or with previous the
// last terminated one. When the status does not know yet (it lags the
// runtime a little), the runtime's newest record of that name (second
// newest with previous) answers.
func (s *Server) logTarget(ctx context.Context, pod *corev1.Pod, name string, previous bool) (podruntime.ContainerStatus, error) {
	records, err := s.rt.List(ctx, string(pod.UID))
	if err != nil {
		return podruntime.ContainerStatus{}, statusErr(http.StatusInternalServerError, "", fmt.Sprintf("listing the containers of pod %q: %v", pod.Name, err))
	}
	records = slices.DeleteFunc(records, func(c podruntime.ContainerStatus) bool { return c.Name != name })
	slices.SortFunc(records, func(a, b podruntime.ContainerStatus) int { return b.Attempt - a.Attempt })
	id, why := statusContainerID(pod, name, previous)
	if id != "" {
		for _, c := range records {
			if c.ID == id {
				return c, nil
			}
		}
	}
	i := 0
	if previous {
		i = 1
	}
	if i < len(records) {
		return records[i], nil
	}
	if why == nil {
		why = fmt.Errorf("the log of container %q in pod %q is gone", name, pod.Name)
	}
	return podruntime.ContainerStatus{}, why
}

// statusContainerID is the runtime ID of the container instance whose log
// the pod's status points at, or the kubelet's error saying why there is
// none.
func statusContainerID(pod *corev1.Pod, name string, previous bool) (string, error) {
	var cs *corev1.ContainerStatus
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				cs = &list[i]
			}
		}
	}
	if cs == nil {
		return "", fmt.Errorf("container %q in pod %q is not available", name, pod.Name)
	}
	last := cs.LastTerminationState.Terminated
	state := cs.State
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
		return runtimeID(last.ContainerID), nil
	case state.Running != nil:
		return runtimeID(cs.ContainerID), nil
	case state.Terminated != nil:
		if state.Terminated.ContainerID != "" {
			return runtimeID(state.Terminated.ContainerID), nil
		}
		if last != nil && last.ContainerID != "" {
			return runtimeID(last.ContainerID), nil
		}
		return "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
	case last != nil && last.ContainerID != "":
		return runtimeID(last.ContainerID), nil
	case state.Waiting != nil:
		switch reason := state.Waiting.Reason; reason {
		case "ErrImagePull":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", name, pod.Name)
		case "ImagePullBackOff":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", name, pod.Name)
		default:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", name, pod.Name, reason)
		}
	}
	return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
}

// runtimeID strips the runtime's scheme from a status's containerID
// ("skiff://<id>").
func runtimeID(containerID string) string {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		return id
	}
	return containerID
}

// errLogDone stops reading once tailLines or limitBytes is reached.
var errLogDone = errors.New("enough")

// writeLog sends c's log to w per o: the kubelet's tail (at most that
// many lines without follow), since, timestamps, limitBytes and stream
// filters; with follow until the container exited and its log was read,
// or ctx ends.
func (s *Server) writeLog(ctx context.Context, w http.ResponseWriter, c podruntime.ContainerStatus, o logOptions) error {
	ro := crilog.ReadOptions{Follow: o.follow}
	skip := 0
	switch {
	case o.tail == 0 && !o.follow:
		return nil
	case o.tail == 0:
		// Follow from the end: start at the last line and drop it.
		if fi, err := os.Stat(c.LogPath); err == nil && fi.Size() > 0 {
			ro.Tail, skip = 1, 1
		}
	case o.tail > 0:
		ro.Tail = int(min(o.tail, 1<<31-1))
	}
	if o.follow {
		exited := make(chan struct{})
		if c.State == podruntime.StateRunning {
			go func() {
				defer close(exited)
				_, _ = s.rt.Wait(ctx, c.ID)
			}()
		} else {
			close(exited)
		}
		ro.Exited = exited
	}
	flusher, _ := w.(http.Flusher)
	var out io.Writer = w
	if !o.follow {
		bw := bufio.NewWriterSize(w, 32<<10)
		defer bw.Flush()
		out = bw
	}
	remaining := o.limit
	read := int64(0)
	var line []byte
	err := crilog.ReadFile(ctx, c.LogPath, ro, func(e crilog.Entry) error {
		if skip > 0 {
			skip--
			return nil
		}
		read++
		if (e.Stream == crilog.Stdout && o.stdout) || (e.Stream == crilog.Stderr && o.stderr) {
			if !e.Time.Before(o.since) {
				line = line[:0]
				if o.timestamps {
					line = append(e.Time.AppendFormat(line, timestampFormat), ' ')
				}
				line = append(line, e.Content...)
				if !e.Partial {
					line = append(line, '\n')
				}
				if remaining >= 0 && int64(len(line)) > remaining {
					line = line[:remaining]
				}
				if _, err := out.Write(line); err != nil {
					return err
				}
				if remaining >= 0 {
					if remaining -= int64(len(line)); remaining == 0 {
						return errLogDone
					}
				}
				if o.follow && flusher != nil {
					flusher.Flush()
				}
			}
		}
		if !o.follow && o.tail > 0 && read >= o.tail {
			return errLogDone // lines written since the start do not count
		}
		return nil
	})
	switch {
	case errors.Is(err, errLogDone), errors.Is(err, os.ErrNotExist):
		return nil // done, or never started: no log yet
	case ctx.Err() != nil:
		return nil
	}
	return err
}
