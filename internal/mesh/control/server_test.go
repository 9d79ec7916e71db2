package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

type fakeIdentity struct{ rotated chan types.UID }

func (f *fakeIdentity) Identity(_ context.Context, pod *corev1.Pod) (*proxy.Identity, error) {
	return &proxy.Identity{CertPEM: []byte("cert-of-" + pod.Name)}, nil
}
func (f *fakeIdentity) Rotated() <-chan types.UID { return f.rotated }

func meshPod(name, node, uid, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid), Labels: labels,
			Annotations: map[string]string{meshconfig.StatusAnnotation: "{}"}},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
}

func socketClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// eventually waits (up to 30 s) until cond returns nil. (testenv
// imports the daemon, which imports this package.)
func eventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition never held: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fetch long-polls the config; a failed request is status 0.
func fetch(t *testing.T, c *http.Client, version string) (*meshconfig.Sidecar, int) {
	t.Helper()
	resp, err := c.Get("http://sidecar" + meshconfig.ConfigPath + "?version=" + version)
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	doc := &meshconfig.Sidecar{}
	if err := json.Unmarshal(body, doc); err != nil {
		t.Fatalf("document: %v", err)
	}
	return doc, resp.StatusCode
}

func endpointSlice(name string, ips ...string) *discoveryv1.EndpointSlice {
	port, pname := int32(8080), "http"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}})
	}
	return es
}

// TestServer runs the node server against fake clientsets: a local
// injected pod gets a socket and a document; an endpoint change and a
// new VirtualService reach it through the long poll; a status report
// shows in Statuses and the node's status ConfigMap; the socket goes
// away with the pod.
func TestServer(t *testing.T) {
	for _, shared := range []bool{true, false} {
		name := "own informers"
		if shared {
			name = "shared factory"
		}
		t.Run(name, func(t *testing.T) { testServer(t, shared) })
	}
}

func testServer(t *testing.T, shared bool) {
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.50", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	local := meshPod("client", "node-a", "uid-1", "10.244.0.10", map[string]string{"app": "client"})
	remote := meshPod("other", "node-b", "uid-2", "10.244.1.10", nil)
	plain := meshPod("plain", "node-a", "uid-3", "10.244.0.11", nil)
	plain.Annotations = nil
	client := fake.NewClientset(web, local, remote, plain, endpointSlice("web-1", "10.244.0.20"))
	istio := istiofake.NewSimpleClientset()
	var factory informers.SharedInformerFactory
	if shared {
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	dir := t.TempDir()
	ident := &fakeIdentity{rotated: make(chan types.UID, 1)}
	srv := New(client, istio, factory, testLogger(t), Options{NodeName: "node-a", DataDir: dir, Identity: ident, PollTimeout: 300 * time.Millisecond, IstioSyncTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if shared {
		factory.Start(ctx.Done())
	}
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if shared {
			factory.Shutdown()
		}
	})

	sock := filepath.Join(dir, meshconfig.PodsDir, "uid-1", meshconfig.SocketName)
	c := socketClient(sock)
	var doc *meshconfig.Sidecar
	eventually(t, func() error {
		d, code := fetch(t, c, "")
		if d == nil {
			return fmt.Errorf("status %d", code)
		}
		doc = d
		return nil
	})
	if doc.Workload.Pod != "client" || string(doc.Proxy.Identity.CertPEM) != "cert-of-client" {
		t.Fatalf("document for %q with identity %q", doc.Workload.Pod, doc.Proxy.Identity.CertPEM)
	}
	if got := endpointsOf(doc, "outbound|80||web.default.svc.cluster.local"); got != "10.244.0.20:80" {
		// The slice's port is 8080 (targetPort); endpoints carry it.
		if got != "10.244.0.20:8080" {
			t.Fatalf("web endpoints = %q", got)
		}
	}
	for _, uid := range []string{"uid-2", "uid-3"} {
		if _, err := net.Dial("unix", filepath.Join(dir, meshconfig.PodsDir, uid, meshconfig.SocketName)); err == nil {
			t.Errorf("pod %s (remote or not injected) got a socket", uid)
		}
	}

	// Same version: the poll waits, then 304.
	if _, code := fetch(t, c, doc.Version); code != http.StatusNotModified {
		t.Fatalf("poll with the current version: status %d, want 304", code)
	}

	// A new endpoint ends a poll in flight.
	got := make(chan *meshconfig.Sidecar, 1)
	slow := &http.Client{Transport: c.Transport}
	go func() {
		resp, err := slow.Get("http://sidecar" + meshconfig.ConfigPath + "?version=" + doc.Version)
		if err != nil {
			got <- nil
			return
		}
		defer resp.Body.Close()
		d := &meshconfig.Sidecar{}
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(d) != nil {
			got <- nil
			return
		}
		got <- d
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, endpointSlice("web-1", "10.244.0.20", "10.244.0.21"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d == nil {
			// The poll timed out before the change (slow machine): fetch.
			d, _ = fetch(t, c, doc.Version)
		}
		if d == nil || !strings.Contains(endpointsOf(d, "outbound|80||web.default.svc.cluster.local"), "10.244.0.21") {
			t.Fatalf("new endpoint not in the document")
		}
		doc = d
	case <-time.After(10 * time.Second):
		t.Fatal("no new document after an endpoint change")
	}

	// An Istio object: the informers started with the first local pod.
	vs := &networkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingapi.VirtualService{Hosts: []string{"web"}, Http: []*networkingapi.HTTPRoute{{
			DirectResponse: &networkingapi.HTTPDirectResponse{Status: 418},
		}}},
	}
	if _, err := istio.NetworkingV1().VirtualServices("default").Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		d, _ := fetch(t, c, doc.Version)
		if d == nil || !strings.Contains(mustJSON(d.Proxy.RouteTables), `"status":418`) {
			return fmt.Errorf("no direct response yet")
		}
		doc = d
		return nil
	})

	// Status reports.
	resp, err := c.Post("http://sidecar"+meshconfig.StatusPath, "application/json", strings.NewReader(`{"version":"`+doc.Version+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, func() error {
		cm, err := client.CoreV1().ConfigMaps(StatusNamespace).Get(ctx, StatusPrefix+"node-a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var st ProxyStatus
		if err := json.Unmarshal([]byte(cm.Data["default_client"]), &st); err != nil {
			return err
		}
		if st.Applied != doc.Version {
			return fmt.Errorf("applied %q, want %q", st.Applied, doc.Version)
		}
		return nil
	})

	// Rotation: a new identity reaches the document.
	ident.rotated <- "uid-1"
	eventually(t, func() error {
		if d, _ := fetch(t, c, ""); d == nil || d.Proxy.Identity == nil {
			return fmt.Errorf("no document")
		}
		return nil
	})

	// The pod goes: its socket closes.
	if err := client.CoreV1().Pods("default").Delete(ctx, "client", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return fmt.Errorf("socket still open")
		}
		return nil
	})
}

func endpointsOf(doc *meshconfig.Sidecar, cluster string) string {
	for _, c := range doc.Proxy.Clusters {
		if c.Name == cluster {
			var out []string
			for _, e := range c.Endpoints {
				out = append(out, e.Address)
			}
			return strings.Join(out, ",")
		}
	}
	return ""
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
