package apiserver

import (
	"context"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCSRStrategy(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		LastUpdateTime: metav1.NewTime(now.Add(-time.Hour)), LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
	failed := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue}
	denied := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}
	old := &certificatesv1.CertificateSigningRequest{
		Spec:   certificatesv1.CertificateSigningRequestSpec{Username: "system:node:a", SignerName: "skiff.dev/mesh-workload"},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{approved}},
	}
	types := func(csr *certificatesv1.CertificateSigningRequest) []certificatesv1.RequestConditionType {
		var out []certificatesv1.RequestConditionType
		for _, c := range csr.Status.Conditions {
			out = append(out, c.Type)
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		subresource string
		next        certificatesv1.CertificateSigningRequestStatus
		wantTypes   []certificatesv1.RequestConditionType
		wantCert    string
	}{
		{"status keeps approval, takes the rest", "status",
			certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{denied, failed}, Certificate: []byte("c")},
			[]certificatesv1.RequestConditionType{"Approved", "Failed"}, "c"},
		{"approval takes approval only", "approval",
			certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{approved, failed}, Certificate: []byte("c")},
			[]certificatesv1.RequestConditionType{"Approved"}, ""},
		{"main resource keeps everything", "",
			certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{denied}},
			[]certificatesv1.RequestConditionType{"Approved"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := old.DeepCopy()
			next.Spec.Username = "mallory"
			next.Status = tc.next
			if tc.subresource == "" {
				next.Status = old.Status // what prepareUpdate copies before
			}
			prepareCSRUpdate(next, old, tc.subresource, now)
			if next.Spec.Username != "system:node:a" {
				t.Errorf("spec changed: username %q", next.Spec.Username)
			}
			if got := types(next); len(got) != len(tc.wantTypes) || (len(got) > 0 && got[0] != tc.wantTypes[0]) || (len(got) > 1 && got[1] != tc.wantTypes[1]) {
				t.Errorf("conditions %v, want %v", got, tc.wantTypes)
			}
			if string(next.Status.Certificate) != tc.wantCert {
				t.Errorf("certificate %q, want %q", next.Status.Certificate, tc.wantCert)
			}
			for _, c := range next.Status.Conditions {
				if c.LastUpdateTime.IsZero() || c.LastTransitionTime.IsZero() {
					t.Errorf("condition %s without times", c.Type)
				}
				if c.Type == certificatesv1.CertificateApproved && !c.LastTransitionTime.Time.Equal(now.Add(-time.Hour)) {
					t.Errorf("Approved's transition time moved to %v", c.LastTransitionTime)
				}
			}
		})
	}

	t.Run("create stamps the requester", func(t *testing.T) {
		csr := &certificatesv1.CertificateSigningRequest{
			Spec:   certificatesv1.CertificateSigningRequestSpec{Username: "system:node:a", Groups: []string{"system:nodes"}, UID: "x"},
			Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{approved}},
		}
		prepareCSRCreate(withUser(context.Background(), UserInfo{Name: "mallory", Groups: []string{"system:authenticated"}}), csr)
		if csr.Spec.Username != "mallory" || len(csr.Spec.Groups) != 1 || csr.Spec.UID != "" || len(csr.Status.Conditions) != 0 {
			t.Errorf("after create: %+v", csr)
		}
	})
}
