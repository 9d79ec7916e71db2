package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/pki"
)

func TestAuthentication(t *testing.T) {
	ts := startServer(t, fakePods{}, &fakeRuntime{}, nil)

	// Without a client certificate: 401 on every path.
	for _, p := range []string{"/healthz", "/containerLogs/default/web/c1", "/exec/default/web/c1", "/metrics/resource"} {
		resp, err := ts.anon.Get(ts.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a certificate: %d, want 401", p, resp.StatusCode)
		}
	}

	// A certificate of another CA does not get in: the client does not
	// offer it (it is not of the CAs the server asks for), or the
	// handshake fails.
	other, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.Issue(pki.Leaf{CommonName: "system:apiserver", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	stranger := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}}}
	if resp, err := stranger.Get(ts.url + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a certificate of another CA got %d", resp.StatusCode)
		}
	}
	// Even offered, it fails the handshake.
	offered := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}}}
	if resp, err := offered.Get(ts.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of another CA, offered, got %d", resp.StatusCode)
	}

	// The cluster CA's certificate gets in.
	if code, body := ts.get(t, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

func TestRouting(t *testing.T) {
	pods := fakePods{"default/web": {
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c1"}}},
	}}
	extra := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/resource" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "# metrics\n")
	})
	ts := startServer(t, pods, &fakeRuntime{}, extra)
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"extra handler", "/metrics/resource", 200, "# metrics"},
		{"unknown path", "/nope", 404, "not found"},
		{"logs of an unknown pod", "/containerLogs/default/nope/c1", 404, `pod "default/nope" does not exist`},
		{"logs of an unknown container", "/containerLogs/default/web/c9", 404, `container "c9" not found in pod "web"`},
		{"logs with a short path", "/containerLogs/default/web", 404, "not found"},
		{"logs with a bad tail", "/containerLogs/default/web/c1?tailLines=x", 400, "tailLines"},
		{"logs with two sinces", "/containerLogs/default/web/c1?sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z", 400, "at most one"},
		{"exec without streams", "/exec/default/web/c1?command=ls", 400, "at least 1 of stdin, stdout, stderr"},
		{"exec in an unknown pod", "/exec/default/nope/c1?command=ls&output=1", 404, `pod \"default/nope\" does not exist`},
		{"exec with a wrong UID", "/exec/default/web/uid-2/c1?command=ls&output=1", 404, "with UID uid-2"},
		{"exec in an unknown container", "/exec/default/web/c9?command=ls&output=1", 404, `container \"c9\" not found`},
		{"exec in a container that does not run", "/exec/default/web/c1?command=ls&output=1", 400, `container \"c1\" in pod \"web\" is not running`},
		{"attach to a container that does not run", "/attach/default/web/c1?output=1", 400, "is not running"},
		{"port-forward to an unknown pod", "/portForward/default/nope", 404, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.get(t, tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s: %d %q, want %d with %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
}
