package identity_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/csrsigner"
	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/mesh/identity"
	"skiff.dev/skiff/internal/pki"
	"skiff.dev/skiff/internal/testenv"
)

// start runs a server with the mesh signer (certificates living ttl) and
// a Manager for node-a with the node's own credentials.
func start(t testing.TB, ttl time.Duration) (admin kubernetes.Interface, meshCA *ca.CA, m *identity.Manager) {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	meshCA, err := ca.LoadOrCreate(t.TempDir(), ca.Options{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	signer := csrsigner.New(env.Client, factory, record.NewFakeRecorder(100), log, csrsigner.Options{CA: meshCA})
	testenv.Run(t, "csr signer", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return signer.Run(ctx, 2)
	})

	clusterCA, err := pki.LoadOrCreateCA(filepath.Join(env.DataDir, "pki"), "ca", "skiff-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := clusterCA.Issue(pki.Leaf{CommonName: "system:node:node-a", Organizations: []string{"system:nodes"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	node, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodeFactory := informers.NewSharedInformerFactory(node, 0)
	m = identity.New(node, nodeFactory, log, identity.Options{NodeName: "node-a", RetryInterval: 100 * time.Millisecond})
	testenv.Run(t, "identity manager", func(ctx context.Context) error {
		nodeFactory.Start(ctx.Done())
		defer nodeFactory.Shutdown()
		return m.Run(ctx)
	})
	return env.Client, meshCA, m
}

func setup(t testing.TB, admin kubernetes.Interface, roots []byte) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ca.RootsConfigMap}, Data: map[string]string{ca.RootsKey: string(roots)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-1"},
		Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: "cart",
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// leaf checks an identity as the pod's: key and certificate match, the
// SPIFFE ID is the pod's, and the certificate chains to the roots.
func leaf(t *testing.T, certPEM, keyPEM, rootsPEM []byte) *x509.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	cert := pair.Leaf
	if got := cert.URIs[0].String(); got != "spiffe://cluster.local/ns/shop/sa/cart" {
		t.Errorf("identity %s", got)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		t.Fatal("no roots")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify: %v", err)
	}
	return cert
}

func TestIssueCacheRenew(t *testing.T) {
	admin, meshCA, m := start(t, 3*time.Second)
	pod := setup(t, admin, meshCA.RootsPEM())
	ctx := t.Context()

	first, err := m.Identity(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	cert1 := leaf(t, first.CertPEM, first.KeyPEM, first.RootsPEM)

	// Cached: the same identity, no new request.
	again, err := m.Identity(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM, first.CertPEM) {
		t.Error("second Identity issued a new certificate")
	}
	csrs, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csrs.Items) != 1 || csrs.Items[0].Spec.Username != "system:node:node-a" {
		t.Fatalf("%d requests (want 1, by the node)", len(csrs.Items))
	}

	// Renewed before it expires, announced on Rotated.
	waitRotated(t, m, pod.UID, 10*time.Second)
	renewed, err := m.Identity(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	cert2 := leaf(t, renewed.CertPEM, renewed.KeyPEM, renewed.RootsPEM)
	if !cert2.NotAfter.After(cert1.NotAfter) {
		t.Errorf("renewed certificate ends %v, not after %v", cert2.NotAfter, cert1.NotAfter)
	}
	if time.Now().After(cert1.NotAfter) {
		t.Logf("note: renewal was observed after the first certificate expired (slow machine)")
	}
	if bytes.Equal(renewed.KeyPEM, first.KeyPEM) {
		t.Error("renewal kept the old key")
	}

	// Root rotation: a new bundle in the namespace reaches the pod.
	other, err := ca.LoadOrCreate(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(meshCA.RootsPEM(), other.RootsPEM()...)
	cm, err := admin.CoreV1().ConfigMaps("shop").Get(ctx, ca.RootsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[ca.RootsKey] = string(bundle)
	if _, err := admin.CoreV1().ConfigMaps("shop").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "new roots", func(ctx context.Context) (bool, error) {
		id, err := m.Identity(ctx, pod)
		return err == nil && bytes.Equal(id.RootsPEM, bundle), err
	})

	// A deleted pod is forgotten.
	if err := admin.CoreV1().Pods("shop").Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "pod forgotten", func(context.Context) (bool, error) { return !m.Holds(pod.UID), nil })
}

func TestDeniedIsAnError(t *testing.T) {
	admin, meshCA, m := start(t, time.Hour)
	pod := setup(t, admin, meshCA.RootsPEM())
	// The pod is replaced by one on another node: node-a may not ask for it.
	if err := admin.CoreV1().Pods("shop").Delete(t.Context(), pod.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	other, err := admin.CoreV1().Pods("shop").Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-1"},
		Spec:       corev1.PodSpec{NodeName: "node-b", ServiceAccountName: "cart", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Identity(t.Context(), other); err == nil {
		t.Fatal("node-a got an identity for node-b's pod")
	} else {
		t.Logf("refused as expected: %v", err)
	}
	if m.Holds(other.UID) {
		t.Error("a failed issuance is kept")
	}
}

func waitRotated(t *testing.T, m *identity.Manager, uid types.UID, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case got := <-m.Rotated():
			if got == uid {
				return
			}
		case <-timeout:
			t.Fatalf("no rotation of %s within %v", uid, within)
		}
	}
}
