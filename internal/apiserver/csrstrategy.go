package apiserver

import (
	"context"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CertificateSigningRequests, as upstream's registry: the API server
// records who asked (spec.username, groups), nobody creates one already
// approved, /status cannot touch Approved or Denied and /approval touches
// nothing else; the spec never changes after create.

// prepareCSRCreate stamps the requester and clears the status.
func prepareCSRCreate(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) {
	u := userFrom(ctx)
	csr.Spec.Username = u.Name
	csr.Spec.UID = ""
	csr.Spec.Groups = append([]string(nil), u.Groups...)
	csr.Spec.Extra = nil
	csr.Status = certificatesv1.CertificateSigningRequestStatus{}
}

// prepareCSRUpdate fixes up next (already old with next's status for a
// subresource, or next with old's status for the main resource).
func prepareCSRUpdate(next, old *certificatesv1.CertificateSigningRequest, subresource string, now time.Time) {
	next.Spec = old.Spec
	switch subresource {
	case "status":
		// Approval conditions are the approver's: keep old's.
		next.Status.Conditions = combineConditions(old.Status.Conditions, next.Status.Conditions)
	case "approval":
		// Only approval conditions change here; the certificate and the
		// signer's conditions are old's.
		next.Status.Conditions = combineConditions(next.Status.Conditions, old.Status.Conditions)
		next.Status.Certificate = old.Status.Certificate
	}
	stampConditions(next, old, now)
}

func isApproval(t certificatesv1.RequestConditionType) bool {
	return t == certificatesv1.CertificateApproved || t == certificatesv1.CertificateDenied
}

// combineConditions returns the approval conditions (Approved, Denied)
// of approvals followed by the other conditions of others.
func combineConditions(approvals, others []certificatesv1.CertificateSigningRequestCondition) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, c := range approvals {
		if isApproval(c.Type) {
			out = append(out, c)
		}
	}
	for _, c := range others {
		if !isApproval(c.Type) {
			out = append(out, c)
		}
	}
	return out
}

// stampConditions fills in condition times the client left empty, as
// upstream: now for a new or changed condition, else the old time.
func stampConditions(next, old *certificatesv1.CertificateSigningRequest, now time.Time) {
	t := metav1.NewTime(now)
	for i := range next.Status.Conditions {
		c := &next.Status.Conditions[i]
		var prev *certificatesv1.CertificateSigningRequestCondition
		if old != nil {
			for j := range old.Status.Conditions {
				if old.Status.Conditions[j].Type == c.Type {
					prev = &old.Status.Conditions[j]
					break
				}
			}
		}
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = t
		}
		if c.LastTransitionTime.IsZero() {
			if prev != nil && prev.Status == c.Status && !prev.LastTransitionTime.IsZero() {
				c.LastTransitionTime = prev.LastTransitionTime
			} else {
				c.LastTransitionTime = t
			}
		}
	}
}

var csrGK = certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest").GroupKind()
