// Package server is the node agent's HTTPS server, what the kubelet
// serves on port 10250: container logs (/containerLogs), exec, attach
// and port-forward streams (/exec, /attach, /portForward, over SPDY and
// WebSocket with k8s.io/cri-streaming, served directly on the request),
// /healthz, and whatever extra handler the daemon mounts (the node's
// /metrics/resource and /stats/summary).
//
// Every request must come with a TLS client certificate signed by the
// cluster CA (Options.ClientCAs); the API server has one and proxies
// users' pods/log, pods/exec, pods/attach, pods/portforward and
// nodes/proxy requests here. Others get 401.
//
// The server finds pods through the agent (Pods: the pods bound to this
// node) and their containers through the pod runtime (Runtime). The
// daemon wires it; nothing else imports it.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime"
)

// Pods finds the pods bound to this node: the agent's view of them.
type Pods interface {
	// GetPodByName returns the pod, or false when the node has none of
	// that name (or does not know yet).
	GetPodByName(namespace, name string) (*corev1.Pod, bool)
}

// Runtime is what the server needs of the pod runtime (package
// podruntime's Manager).
type Runtime interface {
	// List reports the pod's containers, running and exited.
	List(ctx context.Context, podUID string) ([]podruntime.ContainerStatus, error)
	// Wait blocks until the container exited or ctx ends.
	Wait(ctx context.Context, containerID string) (podruntime.ContainerStatus, error)
	// Exec runs cmd in the running container and returns its exit code.
	Exec(ctx context.Context, containerID string, cmd []string, s runtime.Streams, tty bool, resize <-chan [2]uint16) (int, error)
	// Attach connects s to the running container's stdio.
	Attach(ctx context.Context, containerID string, s runtime.Streams) error
	// Resize sets the size of the container's terminal.
	Resize(ctx context.Context, containerID string, width, height uint16) error
	// PortForward connects stream to TCP port on the pod's loopback.
	PortForward(ctx context.Context, podUID string, port int32, stream io.ReadWriter) error
}

var _ Runtime = (*podruntime.Manager)(nil)

// Defaults of Options.
const (
	DefaultAddr = ":10250"
	// DefaultStreamIdleTimeout ends exec, attach and port-forward streams
	// idle that long (the kubelet's streamingConnectionIdleTimeout).
	DefaultStreamIdleTimeout = 4 * time.Hour
	// DefaultStreamCreationTimeout bounds the wait for a client's SPDY
	// streams after the upgrade.
	DefaultStreamCreationTimeout = 30 * time.Second
)

// Options configure a Server. ClientCAs is required.
type Options struct {
	// Listener, when set, is served (Run closes it); otherwise Run
	// listens on Addr (default DefaultAddr).
	Listener net.Listener
	Addr     string
	// ClientCAs verify the clients' certificates (the cluster CA).
	ClientCAs *x509.CertPool
	// Certificate is the serving certificate; nil makes Run create a
	// self-signed one for Hostnames (names and IP addresses), as the
	// kubelet does without a configured one.
	Certificate *tls.Certificate
	Hostnames   []string
	// Extra serves every authenticated request the server does not route
	// itself (e.g. /metrics/resource and /stats/summary); nil answers 404.
	Extra http.Handler
	// StreamIdleTimeout and StreamCreationTimeout shape streaming
	// sessions (defaults above).
	StreamIdleTimeout     time.Duration
	StreamCreationTimeout time.Duration
}

// Server is the agent's HTTPS server. Make one with New, serve with Run.
type Server struct {
	pods Pods
	rt   Runtime
	log  *slog.Logger
	opts Options
	now  func() time.Time
}

// New returns a server for the node's pods on rt. It does no I/O.
func New(pods Pods, rt Runtime, log *slog.Logger, opts Options) *Server {
	if log == nil {
		log = slog.Default()
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.StreamIdleTimeout <= 0 {
		opts.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if opts.StreamCreationTimeout <= 0 {
		opts.StreamCreationTimeout = DefaultStreamCreationTimeout
	}
	return &Server{pods: pods, rt: rt, log: log.With("component", "agent-server"), opts: opts, now: time.Now}
}

// Run serves HTTPS until ctx ends; then it ends open streams and log
// follows, closes the listener and returns nil.
func (s *Server) Run(ctx context.Context) error {
	cfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	ln := s.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.opts.Addr); err != nil {
			return fmt.Errorf("agent server: %w", err)
		}
	}
	// Streams and follows end with ctx: hijacked connections are beyond
	// Shutdown's reach, their requests' contexts are not.
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tls.NewListener(ln, cfg)) }()
	s.log.Info("serving", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("agent server: %w", err)
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	return nil
}

// TLSConfig is the serving configuration: the certificate (self-signed
// when none was given) and client certificates verified against
// ClientCAs. Requests without one reach the handler, which answers 401.
func (s *Server) TLSConfig() (*tls.Config, error) {
	if s.opts.ClientCAs == nil {
		return nil, errors.New("agent server: no client CA: nobody could be authenticated")
	}
	cert := s.opts.Certificate
	if cert == nil {
		c, err := selfSigned(s.opts.Hostnames, time.Now())
		if err != nil {
			return nil, fmt.Errorf("agent server: serving certificate: %w", err)
		}
		cert = &c
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.opts.ClientCAs,
		MinVersion:   tls.VersionTLS12,
		// Streams are HTTP/1.1 upgrades.
		NextProtos: []string{"http/1.1"},
	}, nil
}

// Handler routes the server's paths behind the client certificate check.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	for _, p := range []string{"/exec/{namespace}/{pod}/{container}", "/exec/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.serveExec)
	}
	for _, p := range []string{"/attach/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.serveAttach)
	}
	for _, p := range []string{"/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc(p, s.servePortForward)
	}
	extra := s.opts.Extra
	if extra == nil {
		extra = http.NotFoundHandler()
	}
	mux.Handle("/", extra)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "user", r.TLS.VerifiedChains[0][0].Subject.CommonName)
		mux.ServeHTTP(w, r)
	})
}

// findPod looks the request's pod up and checks the optional {uid}.
func (s *Server) findPod(r *http.Request) (*corev1.Pod, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	pod, ok := s.pods.GetPodByName(ns, name)
	if !ok {
		return nil, statusErr(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pod %q does not exist on this node", ns+"/"+name))
	}
	if uid := r.PathValue("uid"); uid != "" && uid != string(pod.UID) {
		return nil, statusErr(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pod %q with UID %s does not exist on this node", ns+"/"+name, uid))
	}
	return pod, nil
}

// statusError is an error answered before any upgrade, as a Status
// object that kubectl shows as "Error from server (Reason): message".
type statusError struct{ st metav1.Status }

func (e *statusError) Error() string { return e.st.Message }

func statusErr(code int, reason metav1.StatusReason, msg string) error {
	return &statusError{metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}}
}

// writeStatus answers err as a Status object.
func writeStatus(w http.ResponseWriter, err error) {
	var se *statusError
	if !errors.As(err, &se) {
		se = &statusError{metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Reason: metav1.StatusReasonInternalError, Message: err.Error()}}
	}
	st := se.st
	st.Kind, st.APIVersion = "Status", "v1"
	b, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	w.Write(b)
}

// hasContainer reports whether the pod declares a container (app, init
// or ephemeral) of that name.
func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerSpec returns the pod's app or init container of that name.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
