package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime"
)

// serveExec answers /exec/{namespace}/{pod}[/{uid}]/{container}?command=...
// (GET or POST with an Upgrade to SPDY or WebSocket): it runs the
// command in the running container and streams its stdio, then reports
// its exit code (kubectl exits with it). Errors found before the upgrade
// are Status objects.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	opts, pod, c, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	cmd := r.URL.Query()[corev1.ExecCommandParam]
	if len(cmd) == 0 {
		writeStatus(w, statusErr(http.StatusBadRequest, metav1.StatusReasonBadRequest, "you must specify at least one command for the container"))
		return
	}
	ex := &executor{rt: s.rt, id: c.ID, stdin: opts.Stdin}
	remotecommand.ServeExec(w, r, ex, pod.Name, string(pod.UID), c.Name, cmd, opts,
		s.opts.StreamIdleTimeout, s.opts.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// serveAttach answers /attach/{namespace}/{pod}[/{uid}]/{container}: it
// connects the client to the running container's own stdio (stdin only
// when the container was created with stdin: true), resizing its terminal
// as the client's changes.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	opts, pod, c, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	spec := containerSpec(pod, c.Name)
	at := &attacher{rt: s.rt, id: c.ID, stdin: opts.Stdin && spec != nil && spec.Stdin}
	remotecommand.ServeAttach(w, r, at, pod.Name, string(pod.UID), c.Name, opts,
		s.opts.StreamIdleTimeout, s.opts.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// servePortForward answers /portForward/{namespace}/{pod}[/{uid}]: each
// stream pair the client opens is connected to a TCP port on the pod's
// loopback, dialled inside the pod's network namespace.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeStatus(w, statusErr(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "port-forward takes GET or POST"))
		return
	}
	if refuseWebSocket(w, r, portForwardWebSocketProtocols) {
		return
	}
	// WebSocket clients name their ports in the query; SPDY clients in
	// each stream's headers.
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		writeStatus(w, statusErr(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	pod, err := s.findPod(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	pf := &forwarder{rt: s.rt, podUID: string(pod.UID), done: r.Context().Done()}
	portforward.ServePortForward(w, r, pf, pod.Name, string(pod.UID), opts,
		s.opts.StreamIdleTimeout, s.opts.StreamCreationTimeout, portforward.SupportedProtocols)
}

// streamTarget checks an exec or attach request before its upgrade: the
// method, the stream options, the pod and its running container. On
// failure it has answered.
func (s *Server) streamTarget(w http.ResponseWriter, r *http.Request) (*remotecommand.Options, *corev1.Pod, podruntime.ContainerStatus, bool) {
	var none podruntime.ContainerStatus
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeStatus(w, statusErr(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "streams take GET or POST"))
		return nil, nil, none, false
	}
	if refuseWebSocket(w, r, remoteCommandWebSocketProtocols) {
		return nil, nil, none, false
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		writeStatus(w, statusErr(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return nil, nil, none, false
	}
	pod, err := s.findPod(r)
	if err != nil {
		writeStatus(w, err)
		return nil, nil, none, false
	}
	c, err := s.runningContainer(r.Context(), pod, r.PathValue("container"))
	if err != nil {
		writeStatus(w, err)
		return nil, nil, none, false
	}
	return opts, pod, c, true
}

// The WebSocket subprotocols k8s.io/cri-streaming serves (besides none
// at all).
var (
	remoteCommandWebSocketProtocols = []string{"channel.k8s.io", "base64.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"}
	portForwardWebSocketProtocols   = []string{"v4.channel.k8s.io", "v4.base64.channel.k8s.io"}
)

// refuseWebSocket answers a WebSocket request none of whose subprotocols
// is served (kubectl's v5.channel.k8s.io, its SPDY-over-WebSocket
// port-forward tunnel) with 400 before any upgrade: the client then
// falls back to SPDY, which is served. It reports whether it answered.
func refuseWebSocket(w http.ResponseWriter, r *http.Request, served []string) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	var asked []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				asked = append(asked, p)
			}
		}
	}
	if len(asked) == 0 || slices.ContainsFunc(asked, func(p string) bool { return slices.Contains(served, p) }) {
		return false
	}
	writeStatus(w, statusErr(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf(
		"WebSocket subprotocols %s are not served here (served: %s); SPDY is", strings.Join(asked, ", "), strings.Join(served, ", "))))
	return true
}

// runningContainer finds the running instance of the pod's container.
func (s *Server) runningContainer(ctx context.Context, pod *corev1.Pod, name string) (podruntime.ContainerStatus, error) {
	if !hasContainer(pod, name) {
		return podruntime.ContainerStatus{}, statusErr(http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("container %q not found in pod %q", name, pod.Name))
	}
	records, err := s.rt.List(ctx, string(pod.UID))
	if err != nil {
		return podruntime.ContainerStatus{}, fmt.Errorf("listing the containers of pod %q: %w", pod.Name, err)
	}
	var found *podruntime.ContainerStatus
	for i, c := range records {
		if c.Name == name && c.State == podruntime.StateRunning && (found == nil || c.Attempt > found.Attempt) {
			found = &records[i]
		}
	}
	if found == nil {
		return podruntime.ContainerStatus{}, statusErr(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("container %q in pod %q is not running", name, pod.Name))
	}
	return *found, nil
}

// executor runs one exec request's command (remotecommand.Executor).
type executor struct {
	rt    Runtime
	id    string
	stdin bool
}

func (e *executor) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	st := runtime.Streams{}
	if e.stdin {
		st.Stdin = in
	}
	if out != nil {
		st.Stdout = out
	}
	if errw != nil {
		st.Stderr = errw
	}
	sizes, stop := relaySizes(resize)
	defer stop()
	code, err := e.rt.Exec(ctx, e.id, cmd, st, tty, sizes)
	if ctx.Err() != nil {
		return nil // the client left, or the server stops: nobody to tell
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

// relaySizes turns the client's terminal sizes into the runtime's; stop
// ends the relay.
func relaySizes(resize <-chan remotecommand.TerminalSize) (<-chan [2]uint16, func()) {
	if resize == nil {
		return nil, func() {}
	}
	sizes := make(chan [2]uint16)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					return
				}
				select {
				case sizes <- [2]uint16{sz.Width, sz.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return sizes, func() { close(done) }
}

// attacher connects one attach request (remotecommand.Attacher).
type attacher struct {
	rt    Runtime
	id    string
	stdin bool
}

func (a *attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	st := runtime.Streams{}
	if a.stdin {
		st.Stdin = in
	}
	if out != nil {
		st.Stdout = out
	}
	if errw != nil {
		st.Stderr = errw
	}
	if resize != nil {
		go func() {
			for sz := range resize { // closed when the request ends
				_ = a.rt.Resize(ctx, a.id, sz.Width, sz.Height)
			}
		}()
	}
	if err := a.rt.Attach(ctx, a.id, st); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // ended, or the client left
}

// forwarder connects one port-forward request's streams
// (portforward.PortForwarder). done is the request's: the streaming
// library calls PortForward without a cancellable context.
type forwarder struct {
	rt     Runtime
	podUID string
	done   <-chan struct{}
}

func (f *forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-f.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := f.rt.PortForward(ctx, f.podUID, port, stream); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // done, or the client left
}
