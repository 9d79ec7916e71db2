package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestCAReusedAndLeavesCover(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.PEM, again.PEM) {
		t.Fatal("second load made a new CA")
	}
	leaf := Leaf{CommonName: "srv", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}
	c1, k1, err := ca.LoadOrIssue(dir, "srv", leaf)
	if err != nil {
		t.Fatal(err)
	}
	c2, _, _ := ca.LoadOrIssue(dir, "srv", leaf)
	if !bytes.Equal(c1, c2) {
		t.Fatal("an unchanged leaf was reissued")
	}
	leaf.DNSNames = append(leaf.DNSNames, "new.example")
	c3, _, _ := ca.LoadOrIssue(dir, "srv", leaf)
	if bytes.Equal(c1, c3) {
		t.Fatal("a leaf lacking a new name was not reissued")
	}
	pair, err := tls.X509KeyPair(c1, k1)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Fatalf("leaf does not verify against the CA: %v", err)
	}
}
