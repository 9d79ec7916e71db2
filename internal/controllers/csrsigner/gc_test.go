package csrsigner

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/pki"
)

func TestUntilGarbage(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	c := &Controller{opts: Options{Approved: time.Hour, Denied: time.Hour, Failed: time.Hour, Pending: 24 * time.Hour,
		Now: func() time.Time { return now }}}
	root, err := pki.LoadOrCreateCA(t.TempDir(), "root", "root")
	if err != nil {
		t.Fatal(err)
	}
	signer := ca.New(root, nil, ca.Options{TTL: 10 * time.Minute, Now: func() time.Time { return now.Add(-5 * time.Minute) }})
	id := ca.SPIFFEID{TrustDomain: "cluster.local", Namespace: "a", ServiceAccount: "b"}
	cert := func() []byte {
		k, err := pki.LoadOrCreateCA(t.TempDir(), "k", "k") // any P-256 key
		if err != nil {
			t.Fatal(err)
		}
		req, err := ca.NewRequest(k.Key, id)
		if err != nil {
			t.Fatal(err)
		}
		out, err := signer.Sign(req, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}()
	cond := func(typ certificatesv1.RequestConditionType, ago time.Duration) certificatesv1.CertificateSigningRequestCondition {
		return certificatesv1.CertificateSigningRequestCondition{Type: typ, Status: corev1.ConditionTrue, LastUpdateTime: metav1.NewTime(now.Add(-ago))}
	}
	for _, tc := range []struct {
		name    string
		created time.Duration // ago
		conds   []certificatesv1.CertificateSigningRequestCondition
		cert    []byte
		want    time.Duration
	}{
		{"pending, new", time.Minute, nil, nil, 24*time.Hour - time.Minute},
		{"pending a day", 25 * time.Hour, nil, nil, -time.Hour},
		{"approved 10m ago", 20 * time.Minute, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, 10*time.Minute)}, nil, 50 * time.Minute},
		{"denied 2h ago", 3 * time.Hour, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, 2*time.Hour)}, nil, -time.Hour},
		{"failed just now", time.Minute, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, time.Minute), cond(certificatesv1.CertificateFailed, 0)}, nil, 59 * time.Minute},
		{"issued, certificate ends first", 6 * time.Minute, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, 5*time.Minute)}, cert, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{
				ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(now.Add(-tc.created))},
				Status:     certificatesv1.CertificateSigningRequestStatus{Conditions: tc.conds, Certificate: tc.cert},
			}
			if got := c.untilGarbage(csr); got != tc.want {
				t.Errorf("untilGarbage = %v, want %v", got, tc.want)
			}
		})
	}
}
