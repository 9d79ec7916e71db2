package apiserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/testenv"
)

// fakeAgent is a node agent's HTTPS server that accepts only the cluster
// CA's clients and records what reaches it.
type fakeAgent struct {
	mu   sync.Mutex
	seen []string // "GET /path?query user=CN auth=<Authorization header>"
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, fmt.Sprintf("%s %s user=%s auth=%q", r.Method, r.URL.RequestURI(), r.TLS.PeerCertificates[0].Subject.CommonName, r.Header.Get("Authorization")))
	a.mu.Unlock()
	switch {
	case r.URL.Path == "/healthz":
		io.WriteString(w, "ok")
	case r.URL.Path == "/containerLogs/default/p/c1":
		io.WriteString(w, "line 1\nline 2\n")
	case r.URL.Path == "/containerLogs/default/p/c2":
		http.Error(w, `container "c2" in pod "p" is waiting to start: ContainerCreating`, http.StatusBadRequest)
	case strings.HasPrefix(r.URL.Path, "/exec/"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container \"c1\" in pod \"p\" is not running","reason":"BadRequest","code":400}`)
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeAgent) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return ""
	}
	return a.seen[len(a.seen)-1]
}

// TestNodeProxy checks pods/log, the streaming subresources' checks and
// nodes/proxy through the API server to a fake agent.
func TestNodeProxy(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	caPEM, err := os.ReadFile(filepath.Join(env.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	agent := &fakeAgent{}
	ts := httptest.NewUnstartedServer(agent)
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	ts.StartTLS()
	defer ts.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()
	dp, _ := strconv.Atoi(deadPort)
	for name, port := range map[string]int{"n1": p, "dead": dp} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		n, err := env.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
		if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, pod := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{NodeName: "n1",
			Containers: []corev1.Container{{Name: "c1", Image: "busybox"}, {Name: "c2", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c1", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "lost"}, Spec: corev1.PodSpec{NodeName: "dead",
			Containers: []corev1.Container{{Name: "c1", Image: "busybox"}}}},
	} {
		if _, err := env.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name, method, path string
		// want is the body; with code, a Status of that code whose
		// message contains want.
		code     int
		want     string
		wantSeen string // what the agent saw
	}{
		{name: "logs", method: "GET", path: "/api/v1/namespaces/default/pods/p/log?container=c1&tailLines=3&timestamps=true&follow=true&sinceSeconds=10&limitBytes=100",
			want: "line 1\nline 2\n", wantSeen: `GET /containerLogs/default/p/c1?follow=true&limitBytes=100&sinceSeconds=10&tailLines=3&timestamps=true user=system:apiserver auth=""`},
		{name: "logs from a node that does not answer (the only container)", method: "GET", path: "/api/v1/namespaces/default/pods/lost/log",
			code: 500, want: "error dialing backend"},
		{name: "logs without a container", method: "GET", path: "/api/v1/namespaces/default/pods/p/log",
			code: 400, want: "a container name must be specified for pod p, choose one of: [c1 c2]"},
		{name: "logs of a missing container", method: "GET", path: "/api/v1/namespaces/default/pods/p/log?container=nope",
			code: 400, want: "container nope is not valid for pod p"},
		{name: "logs of a missing pod", method: "GET", path: "/api/v1/namespaces/default/pods/nope/log",
			code: 404, want: `pods "nope" not found`},
		{name: "logs of a pod without a node", method: "GET", path: "/api/v1/namespaces/default/pods/pending/log", want: ""},
		{name: "logs with a negative tail", method: "GET", path: "/api/v1/namespaces/default/pods/p/log?container=c1&tailLines=-1",
			code: 422, want: "tailLines"},
		{name: "logs with both sinces", method: "GET", path: "/api/v1/namespaces/default/pods/p/log?container=c1&sinceSeconds=1&sinceTime=2024-01-01T00:00:00Z",
			code: 422, want: "at most one of"},
		{name: "logs the agent refuses", method: "GET", path: "/api/v1/namespaces/default/pods/p/log?container=c2",
			code: 400, want: `container "c2" in pod "p" is waiting to start: ContainerCreating`},
		{name: "exec passes the agent's Status", method: "POST", path: "/api/v1/namespaces/default/pods/p/exec?container=c1&command=ls&command=-l&stdout=true&stderr=true&tty=false",
			code: 400, want: `container "c1" in pod "p" is not running`, wantSeen: `POST /exec/default/p/c1?command=ls&command=-l&error=1&output=1 user=system:apiserver auth=""`},
		{name: "exec in a pod without a node", method: "POST", path: "/api/v1/namespaces/default/pods/pending/exec?command=ls&stdout=true",
			code: 400, want: "pod pending does not have a host assigned"},
		{name: "exec in a missing container", method: "POST", path: "/api/v1/namespaces/default/pods/p/exec?container=c9&command=ls&stdout=true",
			code: 400, want: "container c9 is not valid for pod p"},
		{name: "exec in a missing pod", method: "POST", path: "/api/v1/namespaces/default/pods/nope/exec?command=ls&stdout=true",
			code: 404, want: `pods "nope" not found`},
		{name: "exec without a command", method: "POST", path: "/api/v1/namespaces/default/pods/p/exec?container=c1&stdout=true",
			code: 400, want: "at least one command"},
		{name: "attach to a pod without a node", method: "POST", path: "/api/v1/namespaces/default/pods/pending/attach?stdout=true",
			code: 400, want: "pod pending does not have a host assigned"},
		{name: "port-forward to a pod without a node", method: "POST", path: "/api/v1/namespaces/default/pods/pending/portforward",
			code: 400, want: "pod pending does not have a host assigned"},
		{name: "port-forward with a bad port", method: "POST", path: "/api/v1/namespaces/default/pods/p/portforward?ports=99999",
			code: 400, want: "not a port number"},
		{name: "node proxy", method: "GET", path: "/api/v1/nodes/n1/proxy/healthz",
			want: "ok", wantSeen: `GET /healthz user=system:apiserver auth=""`},
		{name: "node proxy keeps the query", method: "GET", path: "/api/v1/nodes/n1/proxy/containerLogs/default/p/c1?tailLines=1",
			want: "line 1\nline 2\n", wantSeen: `GET /containerLogs/default/p/c1?tailLines=1 user=system:apiserver auth=""`},
		{name: "node proxy of a missing node", method: "GET", path: "/api/v1/nodes/nope/proxy/healthz",
			code: 404, want: `nodes "nope" not found`},
		{name: "node proxy to a node that does not answer", method: "GET", path: "/api/v1/nodes/dead/proxy/healthz",
			code: 500, want: "error dialing backend"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := doRaw(ctx, env, tc.method, tc.path)
			if tc.code != 0 {
				st, ok := err.(apierrors.APIStatus)
				if !ok || int(st.Status().Code) != tc.code || !strings.Contains(st.Status().Message, tc.want) {
					t.Fatalf("err %v (%#v), want %d with %q", err, err, tc.code, tc.want)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if string(body) != tc.want {
					t.Errorf("body %q, want %q", body, tc.want)
				}
			}
			if tc.wantSeen != "" && agent.last() != tc.wantSeen {
				t.Errorf("the agent saw %s\nwant %s", agent.last(), tc.wantSeen)
			}
		})
	}
}

// doRaw sends a request with the admin's credentials and returns the body
// of a 2xx answer, or the Status of another.
func doRaw(ctx context.Context, env *testenv.Env, method, path string) ([]byte, error) {
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, env.Config.Host+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
		return nil, fmt.Errorf("%d: not a Status: %q", resp.StatusCode, body)
	}
	return nil, &apierrors.StatusError{ErrStatus: st}
}
