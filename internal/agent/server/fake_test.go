package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/pki"
	"skiff.dev/skiff/internal/runtime"
)

// fakePods is the agent's view of the node's pods.
type fakePods map[string]*corev1.Pod // by namespace/name

func (p fakePods) GetPodByName(ns, name string) (*corev1.Pod, bool) {
	pod, ok := p[ns+"/"+name]
	return pod, ok
}

// fakeRuntime scripts the runtime's answers.
type fakeRuntime struct {
	mu         sync.Mutex
	containers []podruntime.ContainerStatus
	exited     map[string]chan struct{} // Wait blocks until closed
	exec       func(id string, cmd []string, s runtime.Streams, tty bool) (int, error)
	attach     func(id string, s runtime.Streams) error
	resizes    []string
	forwardTo  string // PortForward dials it
}

func (r *fakeRuntime) List(_ context.Context, podUID string) ([]podruntime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []podruntime.ContainerStatus
	for _, c := range r.containers {
		if c.PodUID == podUID {
			out = append(out, c)
		}
	}
	return out, nil
}

func (r *fakeRuntime) Wait(ctx context.Context, id string) (podruntime.ContainerStatus, error) {
	r.mu.Lock()
	ch := r.exited[id]
	r.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return podruntime.ContainerStatus{}, ctx.Err()
		}
	}
	return podruntime.ContainerStatus{ID: id, State: podruntime.StateExited}, nil
}

func (r *fakeRuntime) Exec(_ context.Context, id string, cmd []string, s runtime.Streams, tty bool, resize <-chan [2]uint16) (int, error) {
	if r.exec == nil {
		return 0, fmt.Errorf("no exec: %w", errdefs.ErrUnavailable)
	}
	return r.exec(id, cmd, s, tty)
}

func (r *fakeRuntime) Attach(_ context.Context, id string, s runtime.Streams) error {
	if r.attach == nil {
		return fmt.Errorf("no attach: %w", errdefs.ErrUnavailable)
	}
	return r.attach(id, s)
}

func (r *fakeRuntime) Resize(_ context.Context, id string, w, h uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resizes = append(r.resizes, fmt.Sprintf("%s %dx%d", id, w, h))
	return nil
}

func (r *fakeRuntime) PortForward(ctx context.Context, _ string, _ int32, stream io.ReadWriter) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.forwardTo)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, stream)
		conn.(*net.TCPConn).CloseWrite()
	}()
	_, err = io.Copy(stream, conn)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// testServer is a Server behind TLS with a cluster CA, and clients.
type testServer struct {
	*Server
	url string
	// client carries a certificate of the cluster CA; anon none.
	client, anon *http.Client
	// restConfig is client-go's view of client (for streams).
	restConfig *rest.Config
	ca         *pki.CA
}

func startServer(t testing.TB, pods Pods, rt Runtime, extra http.Handler) *testServer {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	s := New(pods, rt, nil, Options{ClientCAs: pool, Extra: extra})
	cfg, err := s.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	certPEM, keyPEM, err := ca.Issue(pki.Leaf{CommonName: "system:apiserver", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}}}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	t.Cleanup(client.CloseIdleConnections)
	t.Cleanup(anon.CloseIdleConnections)
	return &testServer{Server: s, url: ts.URL, client: client, anon: anon, ca: ca,
		restConfig: &rest.Config{Host: ts.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true, CertData: certPEM, KeyData: keyPEM}}}
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ts.client.Get(ts.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// logPath is a log file name under dir.
func logPath(dir, name string) string { return filepath.Join(dir, name+".log") }
