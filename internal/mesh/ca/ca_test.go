package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

var testID = SPIFFEID{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "cart"}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignWorkloadCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	c, err := LoadOrCreate(dir, Options{TTL: 30 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	req, err := NewRequest(key, testID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := c.Sign(req, testID, 0)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert := certs[0]
	if got := cert.URIs; len(got) != 1 || got[0].String() != "spiffe://cluster.local/ns/shop/sa/cart" {
		t.Errorf("URI SANs = %v", got)
	}
	if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs: %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
	}
	if !cert.NotAfter.Equal(now.Add(30*time.Second)) || cert.NotBefore.After(now) {
		t.Errorf("validity %v .. %v, want until %v", cert.NotBefore, cert.NotAfter, now.Add(30*time.Second))
	}
	if cert.IsCA {
		t.Error("workload certificate is a CA")
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			t.Errorf("ext key usages %v lack %v", cert.ExtKeyUsage, u)
		}
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Errorf("key usage %v lacks digital signature", cert.KeyUsage)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("certificate is not for the request's key")
	}
	roots, err := ParseCertificates(c.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("verify for %v: %v", usage, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now.Add(time.Minute)}); err == nil {
		t.Error("certificate verifies after it expired")
	}

	// The root is kept: a second load signs with the same one.
	again, err := LoadOrCreate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(again.RootsPEM()) != string(c.RootsPEM()) {
		t.Error("mesh root changed across loads")
	}
	if again.TTL() != DefaultTTL || again.TrustDomain() != DefaultTrustDomain {
		t.Errorf("defaults: ttl %v, trust domain %q", again.TTL(), again.TrustDomain())
	}
}

func TestExtraRoots(t *testing.T) {
	dir := t.TempDir()
	old, err := LoadOrCreate(filepath.Join(dir, "old"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new", extraRootsName), old.RootsPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadOrCreate(filepath.Join(dir, "new"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ParseCertificates(c.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 2 {
		t.Fatalf("%d roots, want the new and the old", len(roots))
	}
}

func TestSignRefuses(t *testing.T) {
	c, err := LoadOrCreate(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	withSANs := func(mod func(*x509.CertificateRequest)) []byte {
		tmpl := &x509.CertificateRequest{URIs: []*url.URL{testID.URL()}}
		mod(tmpl)
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, newKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return pemBlock("CERTIFICATE REQUEST", der)
	}
	good, err := NewRequest(newKey(t), testID)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaReq := func() []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{testID.URL()}}, smallRSA)
		if err != nil {
			t.Fatal(err)
		}
		return pemBlock("CERTIFICATE REQUEST", der)
	}()
	for _, tc := range []struct {
		name string
		csr  []byte
		id   SPIFFEID
	}{
		{"not pem", []byte("hello"), testID},
		{"other id", good, SPIFFEID{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "admin"}},
		{"other trust domain", good, SPIFFEID{TrustDomain: "evil.example", Namespace: "shop", ServiceAccount: "cart"}},
		{"dns san", withSANs(func(r *x509.CertificateRequest) { r.DNSNames = []string{"cart.shop"} }), testID},
		{"two uris", withSANs(func(r *x509.CertificateRequest) {
			r.URIs = append(r.URIs, &url.URL{Scheme: "spiffe", Host: "x", Path: "/y"})
		}), testID},
		{"no uri", withSANs(func(r *x509.CertificateRequest) { r.URIs = nil }), testID},
		{"short rsa key", rsaReq, testID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Sign(tc.csr, tc.id, 0); !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("Sign = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseSPIFFEID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SPIFFEID
		ok   bool
	}{
		{"spiffe://cluster.local/ns/default/sa/default", SPIFFEID{"cluster.local", "default", "default"}, true},
		{"spiffe://td/ns/a/sa/b/c", SPIFFEID{}, false},
		{"https://cluster.local/ns/a/sa/b", SPIFFEID{}, false},
		{"spiffe:///ns/a/sa/b", SPIFFEID{}, false},
		{"spiffe://td/ns//sa/b", SPIFFEID{}, false},
		{"spiffe://td/sa/b/ns/a", SPIFFEID{}, false},
		{"spiffe://td:8/ns/a/sa/b", SPIFFEID{}, false},
		{"%%", SPIFFEID{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSPIFFEID(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseSPIFFEID = %+v, %v", got, err)
			}
			if tc.ok && got.String() != tc.in {
				t.Errorf("String = %q", got.String())
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func BenchmarkSign(b *testing.B) {
	c, err := LoadOrCreate(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	req, err := NewRequest(k, testID)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Sign(req, testID, 0); err != nil {
			b.Fatal(err)
		}
	}
}
