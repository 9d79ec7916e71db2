package printers

import (
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Roles and ClusterRoles have no printer upstream either: they print as
// Default().
func addAccessPrinters(m map[schema.GroupKind]Printer) {
	rbac := func(kind string) schema.GroupKind {
		return schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: kind}
	}
	m[rbac("RoleBinding")] = typed(bindingColumns("roleBinding", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]),
		func(b *rbacv1.RoleBinding, now time.Time) []any {
			return bindingCells(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		})
	m[rbac("ClusterRoleBinding")] = typed(bindingColumns("clusterRoleBinding", rbacv1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"]),
		func(b *rbacv1.ClusterRoleBinding, now time.Time) []any {
			return bindingCells(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		})

	spec := certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()
	m[schema.GroupKind{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		ageColumn(),
		column("SignerName", "string", spec["signerName"]),
		column("Requestor", "string", spec["request"]),
		column("RequestedDuration", "string", spec["expirationSeconds"]),
		column("Condition", "string", certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"]),
	}, csrCells)

	webhooks := []metav1.TableColumnDefinition{
		nameColumn(),
		column("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
		ageColumn(),
	}
	admission := func(kind string) schema.GroupKind {
		return schema.GroupKind{Group: "admissionregistration.k8s.io", Kind: kind}
	}
	m[admission("MutatingWebhookConfiguration")] = typed(webhooks,
		func(c *admissionregistrationv1.MutatingWebhookConfiguration, now time.Time) []any {
			return []any{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp, now)}
		})
	m[admission("ValidatingWebhookConfiguration")] = typed(webhooks,
		func(c *admissionregistrationv1.ValidatingWebhookConfiguration, now time.Time) []any {
			return []any{c.Name, int64(len(c.Webhooks)), age(c.CreationTimestamp, now)}
		})
}

// bindingColumns serve RoleBinding and ClusterRoleBinding; what names the
// kind in the descriptions.
func bindingColumns(what, roleRefDoc string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Role", "string", roleRefDoc),
		ageColumn(),
		wide("Users", "string", "Users in the "+what),
		wide("Groups", "string", "Groups in the "+what),
		wide("ServiceAccounts", "string", "ServiceAccounts in the "+what),
	}
}

func bindingCells(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, now time.Time) []any {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return []any{
		name, ref.Kind + "/" + ref.Name, age(created, now),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "),
	}
}

func csrCells(c *certificatesv1.CertificateSigningRequest, now time.Time) []any {
	requested := "<none>"
	if c.Spec.ExpirationSeconds != nil {
		requested = duration.HumanDuration(time.Duration(*c.Spec.ExpirationSeconds) * time.Second)
	}
	signer := c.Spec.SignerName
	if signer == "" {
		signer = "<none>"
	}
	return []any{c.Name, age(c.CreationTimestamp, now), signer, c.Spec.Username, requested, csrCondition(c)}
}

// csrCondition is "Denied", "Approved" or "Pending", then ",Failed" and
// ",Issued" as they apply.
func csrCondition(c *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, cond := range c.Status.Conditions {
		switch cond.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	status := "Pending"
	switch {
	case denied:
		status = "Denied"
	case approved:
		status = "Approved"
	}
	if failed {
		status += ",Failed"
	}
	if len(c.Status.Certificate) > 0 {
		status += ",Issued"
	}
	return status
}
