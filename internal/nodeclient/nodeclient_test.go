package nodeclient

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/errdefs"
)

// nodes is a NodeGetter over a map; missing nodes are API NotFounds.
func nodes(list ...*corev1.Node) NodeGetter {
	return NodeGetterFunc(func(_ context.Context, name string) (*corev1.Node, error) {
		for _, n := range list {
			if n.Name == name {
				return n, nil
			}
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	})
}

func node(name string, port int32, addrs ...corev1.NodeAddress) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = addrs
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

func TestURL(t *testing.T) {
	c := New(nodes(
		node("a", 10250, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "a.example"}, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}),
		node("b", 0, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b.example"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.2"}),
		node("c", 11000, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "c.example"}),
		node("d", 11000, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::4"}),
		node("none", 10250),
	), nil)
	tests := []struct {
		name, node, path, want string
		err                    func(error) bool
	}{
		{name: "internal IP first", node: "a", path: "/healthz", want: "https://10.0.0.1:10250/healthz"},
		{name: "then external IP, default port", node: "b", path: "/stats/summary", want: "https://203.0.113.2:10250/stats/summary"},
		{name: "host name", node: "c", path: "/metrics/resource", want: "https://c.example:11000/metrics/resource"},
		{name: "IPv6", node: "d", path: "/healthz", want: "https://[fd00::4]:11000/healthz"},
		{name: "query kept", node: "a", path: "/containerLogs/ns/p/c?follow=true&tailLines=1", want: "https://10.0.0.1:10250/containerLogs/ns/p/c?follow=true&tailLines=1"},
		{name: "no address", node: "none", path: "/healthz", err: func(err error) bool { return errors.Is(err, errdefs.ErrUnavailable) }},
		{name: "no node", node: "nope", path: "/healthz", err: apierrors.IsNotFound},
		{name: "relative path", node: "a", path: "healthz", err: func(err error) bool { return errors.Is(err, errdefs.ErrInvalid) }},
		{name: "another host", node: "a", path: "https://evil.example/x", err: func(err error) bool { return errors.Is(err, errdefs.ErrInvalid) }},
		{name: "no node name", node: "", path: "/healthz", err: func(err error) bool { return errors.Is(err, errdefs.ErrInvalid) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := c.URL(t.Context(), tc.node, tc.path)
			if tc.err != nil {
				if err == nil || !tc.err(err) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tc.want {
				t.Errorf("%s, want %s", u, tc.want)
			}
		})
	}
}

func TestGet(t *testing.T) {
	var gotCert bool
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCert = r.TLS != nil && len(r.TLS.PeerCertificates) > 0
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "fine")
		case "/denied":
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	defer ts.Close()
	host, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	client := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	client.Certificates = ts.TLS.Certificates // any certificate will do for this server
	c := New(nodes(node("n", int32(p), corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: host})), client)

	resp, err := c.Get(t.Context(), "n", "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "fine" || !gotCert {
		t.Errorf("body %q, client certificate sent: %v", b, gotCert)
	}
	if _, err := c.Get(t.Context(), "n", "/missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("404: %v", err)
	}
	if _, err := c.Get(t.Context(), "n", "/denied"); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("401: %v", err)
	}
	if u, rt, err := c.Location(t.Context(), "n"); err != nil || rt != c.Transport() || u.String() != "https://"+ts.Listener.Addr().String() {
		t.Errorf("location %v %v", u, err)
	}
}
