// Package ca is the mesh's certificate authority: a self-signed mesh root
// (as istiod's self-signed CA), kept beside the cluster CA in the server's
// data dir, that signs short-lived workload certificates whose only name
// is a SPIFFE ID (spiffe://TRUST-DOMAIN/ns/NS/sa/SA). The mesh root is
// separate from the cluster CA so that a workload certificate never
// authenticates to the Kubernetes API, and the API's never to a sidecar.
//
// Root rotation: move mesh-ca.{crt,key} aside, append the old mesh-ca.crt
// to mesh-roots.pem and restart the server. A new root signs from then on
// and the trusted bundle is new + old; the roots publisher puts it in
// every namespace, nodes hand it to their sidecars (identity.Manager
// reports the change on Rotated), and workload certificates move to the
// new root as they renew. Once the longest TTL has passed, drop the old
// root from mesh-roots.pem.
//
// The server's CSR signer (internal/controllers/csrsigner) imports it;
// nodes use its request helpers and never hold the mesh root's key.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/pki"
)

const (
	// DefaultTrustDomain is the SPIFFE trust domain of the mesh, as Istio's.
	DefaultTrustDomain = "cluster.local"
	// DefaultTTL is the lifetime of a workload certificate, as Istio's.
	DefaultTTL = 24 * time.Hour
	// backdate covers small clock differences between nodes.
	backdate = time.Minute

	rootName = "mesh-ca"
	// extraRootsName holds roots still trusted besides the current one
	// (a previous root while workloads move to a new one).
	extraRootsName = "mesh-roots.pem"
)

// Options configure the CA.
type Options struct {
	// TrustDomain of the SPIFFE IDs it signs (default cluster.local).
	TrustDomain string
	// TTL is the default lifetime of workload certificates (default 24h).
	TTL time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// CA signs workload certificates with the mesh root.
type CA struct {
	root     *pki.CA
	rootsPEM []byte
	opts     Options
}

// LoadOrCreate reads the mesh root from dir (mesh-ca.crt, mesh-ca.key),
// creating it on first use. Further trusted roots (root rotation: the
// previous root, kept while certificates it signed are alive) are read
// from dir/mesh-roots.pem when present.
func LoadOrCreate(dir string, opts Options) (*CA, error) {
	root, err := pki.LoadOrCreateCA(dir, rootName, "skiff-mesh-root")
	if err != nil {
		return nil, fmt.Errorf("mesh ca: %w", err)
	}
	roots := bytes.Clone(root.PEM)
	extra, err := os.ReadFile(filepath.Join(dir, extraRootsName))
	switch {
	case err == nil:
		if _, err := ParseCertificates(extra); err != nil {
			return nil, fmt.Errorf("mesh ca: %s: %w", extraRootsName, err)
		}
		if !bytes.HasSuffix(roots, []byte("\n")) {
			roots = append(roots, '\n')
		}
		roots = append(roots, extra...)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("mesh ca: %w", err)
	}
	return New(root, roots, opts), nil
}

// New returns a CA signing with root; roots is the PEM bundle of every
// trusted mesh root (root's own certificate when nil).
func New(root *pki.CA, roots []byte, opts Options) *CA {
	if opts.TrustDomain == "" {
		opts.TrustDomain = DefaultTrustDomain
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if roots == nil {
		roots = root.PEM
	}
	return &CA{root: root, rootsPEM: roots, opts: opts}
}

// TrustDomain is the trust domain of the IDs the CA signs.
func (c *CA) TrustDomain() string { return c.opts.TrustDomain }

// TTL is the default lifetime of the certificates it signs.
func (c *CA) TTL() time.Duration { return c.opts.TTL }

// RootsPEM is the bundle of trusted mesh roots, PEM-encoded.
func (c *CA) RootsPEM() []byte { return bytes.Clone(c.rootsPEM) }

// Sign checks a PEM-encoded PKCS#10 request for the SPIFFE ID id and
// returns the certificate, PEM-encoded. ttl 0 means the CA's default; no
// certificate outlives the root. The request must be self-signed, carry
// exactly id as its one URI SAN and no other name, and use an ECDSA
// (P-256 or P-384) or RSA (2048 bits or more) key.
func (c *CA) Sign(csrPEM []byte, id SPIFFEID, ttl time.Duration) ([]byte, error) {
	if id.TrustDomain != c.opts.TrustDomain {
		return nil, fmt.Errorf("trust domain %q is not the mesh's %q: %w", id.TrustDomain, c.opts.TrustDomain, errdefs.ErrInvalid)
	}
	req, err := ParseRequest(csrPEM)
	if err != nil {
		return nil, err
	}
	got, err := RequestID(req)
	if err != nil {
		return nil, err
	}
	if got != id {
		return nil, fmt.Errorf("request names %s, not %s: %w", got, id, errdefs.ErrInvalid)
	}
	if ttl <= 0 {
		ttl = c.opts.TTL
	}
	now := c.opts.Now()
	notAfter := now.Add(ttl)
	if notAfter.After(c.root.Cert.NotAfter) {
		notAfter = c.root.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root.Cert, req.PublicKey, c.root.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// ParseRequest decodes a PEM-encoded certificate request, checks its
// signature and its key.
func ParseRequest(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("no PEM CERTIFICATE REQUEST block: %w", errdefs.ErrInvalid)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %v: %w", err, errdefs.ErrInvalid)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %v: %w", err, errdefs.ErrInvalid)
	}
	if err := checkKey(req.PublicKey); err != nil {
		return nil, err
	}
	return req, nil
}

func checkKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("ecdsa curve %s is not P-256 or P-384: %w", k.Curve.Params().Name, errdefs.ErrInvalid)
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return fmt.Errorf("rsa key of %d bits is shorter than 2048: %w", k.N.BitLen(), errdefs.ErrInvalid)
	}
	return fmt.Errorf("key type %T is not ECDSA or RSA: %w", k, errdefs.ErrInvalid)
}

// RequestID returns the SPIFFE ID a request asks for: its only name.
func RequestID(req *x509.CertificateRequest) (SPIFFEID, error) {
	if len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses) > 0 {
		return SPIFFEID{}, fmt.Errorf("a workload certificate names only its SPIFFE ID (no DNS, IP or email SANs): %w", errdefs.ErrInvalid)
	}
	if len(req.URIs) != 1 {
		return SPIFFEID{}, fmt.Errorf("a workload certificate needs exactly one URI SAN, got %d: %w", len(req.URIs), errdefs.ErrInvalid)
	}
	return ParseSPIFFEID(req.URIs[0].String())
}

// ParseCertificates decodes every CERTIFICATE block of a PEM bundle; it
// fails when there is none.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %v: %w", err, errdefs.ErrInvalid)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate: %w", errdefs.ErrInvalid)
	}
	return out, nil
}

// SPIFFEID is a workload's identity in the mesh.
type SPIFFEID struct {
	TrustDomain, Namespace, ServiceAccount string
}

// String is spiffe://TRUST-DOMAIN/ns/NS/sa/SA.
func (id SPIFFEID) String() string { return id.URL().String() }

// URL is the ID as the URI SAN of a certificate.
func (id SPIFFEID) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// ParseSPIFFEID parses spiffe://TRUST-DOMAIN/ns/NS/sa/SA.
func ParseSPIFFEID(s string) (SPIFFEID, error) {
	bad := func(why string) (SPIFFEID, error) {
		return SPIFFEID{}, fmt.Errorf("spiffe id %q: %s: %w", s, why, errdefs.ErrInvalid)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad(err.Error())
	}
	if u.Scheme != "spiffe" || u.Host == "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
		return bad("not spiffe://TRUST-DOMAIN/...")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" || parts[1] == "" || parts[3] == "" {
		return bad("path is not /ns/NAMESPACE/sa/SERVICEACCOUNT")
	}
	return SPIFFEID{TrustDomain: u.Host, Namespace: parts[1], ServiceAccount: parts[3]}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
