package apiserver_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/etcdserver"
	"skiff.dev/skiff/internal/testenv"
)

// runServer runs a server on dataDir until the returned stop is called.
func runServer(t *testing.T, dataDir string) (kubernetes.Interface, func()) {
	t.Helper()
	srv, err := daemon.NewServer(daemon.ServerOptions{
		DataDir: dataDir, Listen: "127.0.0.1:0", DisableControllers: true, Logger: testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	}
	t.Cleanup(stop)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server failed: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", daemon.AdminKubeconfigPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, stop
}

// TestServiceAllocationSurvivesRestartAndRepairs restarts a server on the
// same data: allocations are kept; records lost or leaked while it was
// down (a crash between a record's write and the Service's) are repaired
// at start.
func TestServiceAllocationSurvivesRestartAndRepairs(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	cs, stop := runServer(t, dataDir)
	svcs := cs.CoreV1().Services("default")
	a, err := svcs.Create(ctx, svc("a", nodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svcs.Create(ctx, svc("b", nodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	// While the server is down: lose a's records, leak an address and a
	// node port (records naming Services that do not exist).
	m, err := etcdserver.StartEmbedded(ctx, etcdserver.Config{Dir: filepath.Join(dataDir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	cli := m.Client()
	if _, err := cli.Delete(ctx, "/registry/networking.k8s.io/ipaddresses/"+a.Spec.ClusterIP); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "/registry/skiff/servicenodeports/"+strconv.Itoa(int(a.Spec.Ports[0].NodePort))); err != nil {
		t.Fatal(err)
	}
	leaked := networkingv1.IPAddress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IPAddress"},
		ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.77", UID: "leaked", CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour)),
			Labels: map[string]string{"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "gone"}},
	}
	data, _ := json.Marshal(leaked)
	if _, err := cli.Put(ctx, "/registry/networking.k8s.io/ipaddresses/10.96.0.77", string(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/registry/skiff/servicenodeports/30777",
		`{"namespace":"default","name":"gone","created":"2020-01-01T00:00:00Z"}`); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	m.Close()

	cs, _ = runServer(t, dataDir)
	svcs = cs.CoreV1().Services("default")
	ips := cs.NetworkingV1().IPAddresses()
	// Kept: the services and their allocations, and b's records.
	for _, want := range []string{a.Spec.ClusterIP, b.Spec.ClusterIP} {
		testenv.Eventually(t, "the record of "+want+" exists", func(ctx context.Context) (bool, error) {
			_, err := ips.Get(ctx, want, metav1.GetOptions{})
			return err == nil, err
		})
	}
	testenv.Eventually(t, "the leaked address is freed", func(ctx context.Context) (bool, error) {
		_, err := ips.Get(ctx, "10.96.0.77", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	// a's re-recorded values are taken; the leaked ones are free.
	_, err = svcs.Create(ctx, svc("wants-a-ip", clusterIP(a.Spec.ClusterIP)), metav1.CreateOptions{})
	wantInvalid(t, err, "spec.clusterIPs", "provided IP is already allocated")
	_, err = svcs.Create(ctx, svc("wants-a-port", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort }), metav1.CreateOptions{})
	wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
	_, err = svcs.Create(ctx, svc("wants-b-port", nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = b.Spec.Ports[0].NodePort }), metav1.CreateOptions{})
	wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
	takesLeaked := svc("takes-leaked", clusterIP("10.96.0.77"), nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30777 })
	testenv.Eventually(t, "the leaked node port is freed", func(ctx context.Context) (bool, error) {
		_, err := svcs.Create(ctx, takesLeaked.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, err
	})
	if _, err := svcs.Create(ctx, takesLeaked, metav1.CreateOptions{}); err != nil {
		t.Fatalf("leaked address and port not freed: %v", err)
	}
	// New services never get what existing ones hold.
	c, err := svcs.Create(ctx, svc("c", nodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.ClusterIP == a.Spec.ClusterIP || c.Spec.ClusterIP == b.Spec.ClusterIP {
		t.Errorf("new service got %s, held before the restart", c.Spec.ClusterIP)
	}
}
