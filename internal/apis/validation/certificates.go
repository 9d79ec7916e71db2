package validation

import (
	"encoding/pem"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	csrStatusPath = field.NewPath("status")
	knownUsages   = map[certificatesv1.KeyUsage]bool{}
)

func init() {
	for _, u := range []certificatesv1.KeyUsage{
		certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
		certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
		certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
		certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
		certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
		certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
		certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
		certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
	} {
		knownUsages[u] = true
	}
}

// validateCSR is upstream's check of a certificates.k8s.io/v1
// CertificateSigningRequest.
func validateCSR(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
	allErrs := validateObjectMeta(&csr.ObjectMeta, false, path.ValidatePathSegmentName)
	spec := &csr.Spec
	if len(spec.Request) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("request"), ""))
	} else if block, _ := pem.Decode(spec.Request); block == nil || block.Type != "CERTIFICATE REQUEST" {
		allErrs = append(allErrs, field.Invalid(specPath.Child("request"), "", "must contain a PEM-encoded CERTIFICATE REQUEST"))
	}
	if len(spec.Usages) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("usages"), ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range spec.Usages {
		p := specPath.Child("usages").Index(i)
		switch {
		case !knownUsages[u]:
			allErrs = append(allErrs, field.NotSupported[string](p, u, nil))
		case seen[u]:
			allErrs = append(allErrs, field.Duplicate(p, u))
		}
		seen[u] = true
	}
	allErrs = append(allErrs, validateSignerName(spec.SignerName, specPath.Child("signerName"))...)
	if s := spec.ExpirationSeconds; s != nil && *s < 600 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("expirationSeconds"), *s, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	return append(allErrs, validateCSRStatus(&csr.Status)...)
}

// validateSignerName accepts a domain-prefixed path, e.g.
// kubernetes.io/kube-apiserver-client or skiff.dev/mesh-workload.
func validateSignerName(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return utilvalidation.IsDomainPrefixedPath(fldPath, name)
}

func validateCSRStatus(st *certificatesv1.CertificateSigningRequestStatus) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range st.Conditions {
		p := csrStatusPath.Child("conditions").Index(i)
		if c.Type == "" {
			allErrs = append(allErrs, field.Required(p.Child("type"), ""))
			continue
		}
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			if seen[c.Type] {
				allErrs = append(allErrs, field.Duplicate(p.Child("type"), c.Type))
			}
			if c.Status != corev1.ConditionTrue {
				allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status, []corev1.ConditionStatus{corev1.ConditionTrue}))
			}
		default:
			switch c.Status {
			case corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
			default:
				allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status,
					[]corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}))
			}
		}
		seen[c.Type] = true
	}
	if seen[certificatesv1.CertificateApproved] && seen[certificatesv1.CertificateDenied] {
		allErrs = append(allErrs, field.Invalid(csrStatusPath.Child("conditions"), "",
			"Approved and Denied conditions are mutually exclusive"))
	}
	if len(st.Certificate) > 0 {
		p := csrStatusPath.Child("certificate")
		if !seen[certificatesv1.CertificateApproved] || seen[certificatesv1.CertificateFailed] {
			allErrs = append(allErrs, field.Forbidden(p, "certificate may only be set if the request is approved and has not failed"))
		}
		if !onlyCertificates(st.Certificate) {
			allErrs = append(allErrs, field.Invalid(p, "<certificate data>", "must contain one or more PEM-encoded CERTIFICATE blocks and nothing else"))
		}
	}
	return allErrs
}

func onlyCertificates(data []byte) bool {
	n := 0
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return n > 0 && len(trimSpace(rest)) == 0
		}
		if block.Type != "CERTIFICATE" {
			return false
		}
		n++
		data = rest
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func validateCSRUpdate(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	allErrs := append(validateObjectMetaUpdate(&csr.ObjectMeta, &old.ObjectMeta), validateCSR(csr)...)
	if len(old.Status.Certificate) > 0 && string(old.Status.Certificate) != string(csr.Status.Certificate) {
		allErrs = append(allErrs, field.Forbidden(csrStatusPath.Child("certificate"), "updates may not modify existing certificate content"))
	}
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
		if hasCondition(old, t) && !hasCondition(csr, t) {
			allErrs = append(allErrs, field.Forbidden(csrStatusPath.Child("conditions"), "updates may not remove a condition of type \""+string(t)+"\""))
		}
	}
	return allErrs
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}
