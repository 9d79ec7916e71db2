package csrsigner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/testenv"
)

// TestKubectlAndServerWiring runs the whole server: the signer and the
// roots publisher run among its control loops, and kubectl lists and
// approves CertificateSigningRequests.
func TestKubectlAndServerWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// The mesh roots reach every namespace.
	testenv.Eventually(t, "default/"+ca.RootsConfigMap, func(ctx context.Context) (bool, error) {
		cm, err := env.Client.CoreV1().ConfigMaps("default").Get(ctx, ca.RootsConfigMap, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, err = ca.ParseCertificates([]byte(cm.Data[ca.RootsKey]))
		return err == nil, err
	})

	// A request for another signer waits for a person.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.CertificatesV1().CertificateSigningRequests().Create(t.Context(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: "kubernetes.io/kube-apiserver-client",
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION
	if out := run("get", "csr"); !regexp.MustCompile(`(?m)^alice\s+\S+\s+kubernetes.io/kube-apiserver-client\s+admin\s+<none>\s+Pending\s*$`).MatchString(out) {
		t.Fatalf("kubectl get csr:\n%s", out)
	}
	run("certificate", "approve", "alice")
	if out := run("get", "csr", "alice"); !regexp.MustCompile(`(?m)^alice\s.*\sApproved\s*$`).MatchString(out) {
		t.Fatalf("kubectl get csr alice after approve:\n%s", out)
	}
	// The status subresource cannot take the approval back.
	got, err := env.Client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), "alice", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Status.Conditions = nil
	if after, err := env.Client.CertificatesV1().CertificateSigningRequests().UpdateStatus(t.Context(), got, metav1.UpdateOptions{}); err == nil && condition(after, certificatesv1.CertificateApproved) == nil {
		t.Error("an update of /status removed the Approved condition")
	}
	if out := run("get", "csr", "alice", "-o", "jsonpath={.status.conditions[0].reason}"); out != "KubectlApprove" {
		t.Errorf("approval reason %q", out)
	}
}
