package identity

import (
	"context"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// issue gets a new certificate for pod: a fresh key, a CSR, the signed
// certificate, and the namespace's roots.
func (m *Manager) issue(ctx context.Context, pod podRef) (*proxy.Identity, time.Time, error) {
	id := ca.SPIFFEID{TrustDomain: m.opts.TrustDomain, Namespace: pod.namespace, ServiceAccount: pod.serviceAccount}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, time.Time{}, err
	}
	req, err := ca.NewRequest(key, id)
	if err != nil {
		return nil, time.Time{}, err
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "mesh-" + truncate(pod.namespace+"-"+pod.name, 40) + "-",
			Annotations: map[string]string{
				ca.PodNamespaceAnnotation: pod.namespace,
				ca.PodNameAnnotation:      pod.name,
				ca.PodUIDAnnotation:       string(pod.uid),
			},
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    req,
			SignerName: ca.SignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment,
				certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth},
		},
	}
	if m.opts.Lifetime > 0 {
		s := int32(m.opts.Lifetime / time.Second)
		csr.Spec.ExpirationSeconds = &s
	}
	csrs := m.client.CertificatesV1().CertificateSigningRequests()
	created, err := csrs.Create(ctx, csr, metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mesh identity for %s/%s: %w", pod.namespace, pod.name, err)
	}
	certPEM, err := m.waitSigned(ctx, created)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mesh identity for %s/%s: csr %s: %w", pod.namespace, pod.name, created.Name, err)
	}
	certs, err := ca.ParseCertificates(certPEM)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mesh identity for %s/%s: csr %s: %w", pod.namespace, pod.name, created.Name, err)
	}
	if !key.PublicKey.Equal(certs[0].PublicKey) {
		return nil, time.Time{}, fmt.Errorf("mesh identity for %s/%s: csr %s: certificate is not for the requested key", pod.namespace, pod.name, created.Name)
	}
	roots, err := m.roots(ctx, pod.namespace)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mesh identity for %s/%s: %w", pod.namespace, pod.name, err)
	}
	return &proxy.Identity{CertPEM: certPEM, KeyPEM: keyPEM, RootsPEM: roots}, certs[0].NotAfter, nil
}

// waitSigned watches csr until it carries a certificate or is denied or
// failed.
func (m *Manager) waitSigned(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) ([]byte, error) {
	csrs := m.client.CertificatesV1().CertificateSigningRequests()
	for {
		if cert, err := decided(csr); cert != nil || err != nil {
			return cert, err
		}
		w, err := csrs.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", csr.Name).String(),
			ResourceVersion: csr.ResourceVersion,
		})
		if err != nil {
			return nil, err
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				if c, ok := ev.Object.(*certificatesv1.CertificateSigningRequest); ok {
					csr = c
				}
			case watch.Deleted:
				w.Stop()
				return nil, fmt.Errorf("deleted before it was signed: %w", errdefs.ErrUnavailable)
			}
			if cert, err := decided(csr); cert != nil || err != nil {
				w.Stop()
				return cert, err
			}
		}
		w.Stop()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The watch ended (or expired): read the request again.
		if csr, err = csrs.Get(ctx, csr.Name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
	}
}

// decided returns the certificate of a signed request, an error for a
// denied or failed one, and neither while it is pending.
func decided(csr *certificatesv1.CertificateSigningRequest) ([]byte, error) {
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateDenied:
			return nil, fmt.Errorf("denied: %s: %w", c.Message, errdefs.ErrInvalid)
		case certificatesv1.CertificateFailed:
			return nil, fmt.Errorf("signing failed: %s: %w", c.Message, errdefs.ErrUnavailable)
		}
	}
	if len(csr.Status.Certificate) > 0 {
		return csr.Status.Certificate, nil
	}
	return nil, nil
}

// roots returns the trusted mesh roots published in ns, waiting for them
// when the namespace is new.
func (m *Manager) roots(ctx context.Context, ns string) ([]byte, error) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		cm, err := m.configMaps.ConfigMaps(ns).Get(ca.RootsConfigMap)
		if apierrors.IsNotFound(err) {
			cm, err = m.client.CoreV1().ConfigMaps(ns).Get(ctx, ca.RootsConfigMap, metav1.GetOptions{})
		}
		if err == nil {
			roots := []byte(cm.Data[ca.RootsKey])
			if _, perr := ca.ParseCertificates(roots); perr != nil {
				return nil, fmt.Errorf("mesh roots in %s/%s: %w", ns, ca.RootsConfigMap, perr)
			}
			return roots, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no mesh roots in %s/%s yet: %w", ns, ca.RootsConfigMap, ctx.Err())
		case <-t.C:
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
