package csrsigner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/csrsigner"
	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/pki"
	"skiff.dev/skiff/internal/testenv"
)

type cluster struct {
	env   *testenv.Env
	admin kubernetes.Interface
	ca    *ca.CA
}

func start(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	meshCA, err := ca.LoadOrCreate(t.TempDir(), ca.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	log := testenv.Logger(t)
	signer := csrsigner.New(env.Client, factory, record.NewFakeRecorder(100), log, csrsigner.Options{CA: meshCA})
	roots := csrsigner.NewRootPublisher(env.Client, factory, log, meshCA.RootsPEM())
	testenv.Run(t, "csr signer", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		go roots.Run(ctx, 1)
		return signer.Run(ctx, 2)
	})
	return &cluster{env: env, admin: env.Client, ca: meshCA}
}

// as returns a client authenticated with a cluster client certificate
// for user in groups.
func (c *cluster) as(t *testing.T, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	clusterCA, err := pki.LoadOrCreateCA(filepath.Join(c.env.DataDir, "pki"), "ca", "skiff-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := clusterCA.Issue(pki.Leaf{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.env.Config)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (c *cluster) pod(t *testing.T, ns, name, node, sa string) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	if _, err := c.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if _, err := c.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// request creates a CSR for pod with the SPIFFE ID id and waits until it
// is decided.
func request(t *testing.T, client kubernetes.Interface, pod *corev1.Pod, id ca.SPIFFEID) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := ca.NewRequest(key, id)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := client.CertificatesV1().CertificateSigningRequests().Create(t.Context(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "mesh-", Annotations: map[string]string{
			ca.PodNamespaceAnnotation: pod.Namespace, ca.PodNameAnnotation: pod.Name, ca.PodUIDAnnotation: string(pod.UID)}},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: req, SignerName: ca.SignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out *certificatesv1.CertificateSigningRequest
	testenv.Eventually(t, "csr "+csr.Name+" decided", func(ctx context.Context) (bool, error) {
		got, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		out = got
		return condition(got, certificatesv1.CertificateDenied) != nil || len(got.Status.Certificate) > 0 ||
			condition(got, certificatesv1.CertificateFailed) != nil, nil
	})
	return out
}

func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i, c := range csr.Status.Conditions {
		if c.Type == t {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

func TestSigner(t *testing.T) {
	c := start(t)
	pod := c.pod(t, "shop", "cart-1", "node-a", "cart")
	cartID := ca.SPIFFEID{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "cart"}
	nodeA := c.as(t, "system:node:node-a", "system:nodes")

	t.Run("own pod", func(t *testing.T) {
		csr := request(t, nodeA, pod, cartID)
		if csr.Spec.Username != "system:node:node-a" {
			t.Errorf("spec.username = %q, want the requester", csr.Spec.Username)
		}
		if condition(csr, certificatesv1.CertificateApproved) == nil || len(csr.Status.Certificate) == 0 {
			t.Fatalf("not approved and signed: %+v", csr.Status.Conditions)
		}
		certs, err := ca.ParseCertificates(csr.Status.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if got := certs[0].URIs[0].String(); got != cartID.String() {
			t.Errorf("certificate for %s", got)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(c.ca.RootsPEM())
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots}); err != nil {
			t.Errorf("verify: %v", err)
		}
	})
	t.Run("admin", func(t *testing.T) {
		csr := request(t, c.admin, pod, cartID)
		if len(csr.Status.Certificate) == 0 {
			t.Fatalf("admin's request not signed: %+v", csr.Status.Conditions)
		}
	})
	for _, tc := range []struct {
		name   string
		client kubernetes.Interface
		id     ca.SPIFFEID
		reason string
	}{
		{"another node's pod", c.as(t, "system:node:node-b", "system:nodes"), cartID, "does not run on node node-b"},
		{"wrong service account", nodeA, ca.SPIFFEID{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "admin"}, "runs as spiffe://cluster.local/ns/shop/sa/cart"},
		{"wrong namespace", nodeA, ca.SPIFFEID{TrustDomain: "cluster.local", Namespace: "kube-system", ServiceAccount: "cart"}, "runs as"},
		{"wrong trust domain", nodeA, ca.SPIFFEID{TrustDomain: "evil.example", Namespace: "shop", ServiceAccount: "cart"}, "trust domain"},
		{"not a node", c.as(t, "mallory"), cartID, "neither a node nor an admin"},
		{"node name without the nodes group", c.as(t, "system:node:node-a"), cartID, "neither a node nor an admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr := request(t, tc.client, pod, tc.id)
			denied := condition(csr, certificatesv1.CertificateDenied)
			if denied == nil || len(csr.Status.Certificate) > 0 {
				t.Fatalf("not denied: %+v", csr.Status)
			}
			if !strings.Contains(denied.Message, tc.reason) {
				t.Errorf("denied with %q, want it to say %q", denied.Message, tc.reason)
			}
		})
	}
	t.Run("forged requester", func(t *testing.T) {
		// The API server, not the client, says who asks.
		mallory := c.as(t, "mallory")
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		req, err := ca.NewRequest(key, cartID)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := mallory.CertificatesV1().CertificateSigningRequests().Create(t.Context(), &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "forged-", Annotations: map[string]string{
				ca.PodNamespaceAnnotation: pod.Namespace, ca.PodNameAnnotation: pod.Name}},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: req, SignerName: ca.SignerName, Username: "system:node:node-a", Groups: []string{"system:nodes"},
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature},
			},
			Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{
				{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if csr.Spec.Username != "mallory" || len(csr.Status.Conditions) != 0 {
			t.Fatalf("created as %q with conditions %v", csr.Spec.Username, csr.Status.Conditions)
		}
		// Nor may mallory sign it through /status.
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
		csr.Status.Certificate = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		if _, err := mallory.CertificatesV1().CertificateSigningRequests().UpdateStatus(t.Context(), csr, metav1.UpdateOptions{}); err == nil {
			t.Error("a certificate was set through /status on a request nobody approved")
		}
	})
	t.Run("pod gone", func(t *testing.T) {
		gone := c.pod(t, "shop", "gone", "node-a", "cart")
		if err := c.admin.CoreV1().Pods("shop").Delete(t.Context(), "gone", *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		csr := request(t, nodeA, gone, cartID)
		if d := condition(csr, certificatesv1.CertificateDenied); d == nil || !strings.Contains(d.Message, "does not exist") {
			t.Fatalf("not denied as missing: %+v", csr.Status)
		}
	})
	t.Run("roots published", func(t *testing.T) {
		testenv.Eventually(t, "shop/"+ca.RootsConfigMap, func(ctx context.Context) (bool, error) {
			cm, err := c.admin.CoreV1().ConfigMaps("shop").Get(ctx, ca.RootsConfigMap, metav1.GetOptions{})
			return err == nil && cm.Data[ca.RootsKey] == string(c.ca.RootsPEM()), err
		})
		// A changed copy is put back.
		cm, err := c.admin.CoreV1().ConfigMaps("shop").Get(t.Context(), ca.RootsConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data[ca.RootsKey] = "tampered"
		if _, err := c.admin.CoreV1().ConfigMaps("shop").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "roots restored", func(ctx context.Context) (bool, error) {
			cm, err := c.admin.CoreV1().ConfigMaps("shop").Get(ctx, ca.RootsConfigMap, metav1.GetOptions{})
			return err == nil && cm.Data[ca.RootsKey] == string(c.ca.RootsPEM()), err
		})
	})
}
