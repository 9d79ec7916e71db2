package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// Mesh mTLS on inbound capture chains (FilterChain.MTLS).
//
// Strict chains require a TLS handshake in which the client presents a
// certificate chaining to Identity.RootsPEM; the proxy answers with its
// Identity. Permissive chains look at the client's first bytes (for at
// most permissivePeekTimeout): a TLS ClientHello offering MeshALPN is
// terminated as mesh mTLS, anything else — plaintext, an application's
// own TLS, silence — is served as plaintext. The identity is read from
// the configuration in effect when the connection arrives, so a new
// Identity applies to new handshakes.
//
// On HTTP chains the proxy offers ALPN "h2", "http/1.1" and MeshALPN, in
// that order of preference: a client offering "h2" speaks HTTP/2, one
// offering only MeshALPN HTTP/1.1.

// acceptMeshTLS terminates mesh mTLS on c.
func acceptMeshTLS(c *captureConn, id *meshIdentity, http bool) (*tls.Conn, error) {
	if id == nil {
		return nil, errors.New("no mesh identity")
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*id.cert},
		// Verified below: any extended key usage is accepted, as
		// Istio's workload certificates are used both ways.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPeer(raw, id.roots)
		},
	}
	if http {
		cfg.NextProtos = []string{"h2", "http/1.1", MeshALPN}
	}
	tc := tls.Server(c, cfg)
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		c.meta.principal = principalOf(leaf)
		sum := sha256.Sum256(leaf.Raw)
		v := "Hash=" + hex.EncodeToString(sum[:]) + `;Subject=""`
		if id.uri != "" {
			v = "By=" + id.uri + ";" + v
		}
		if c.meta.principal != "" {
			v += ";URI=spiffe://" + c.meta.principal
		}
		c.meta.xfcc = []string{v}
	}
	return tc, nil
}

func verifyPeer(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("no client certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// principalOf is a certificate's SPIFFE ID without "spiffe://" (Istio's
// source.principal), or "".
func principalOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") {
			return strings.TrimPrefix(u.String(), "spiffe://")
		}
	}
	return ""
}

// maxHelloRecord bounds the first TLS record read to look for a
// ClientHello (a record's plaintext is at most 16 KiB).
const maxHelloRecord = 5 + 16<<10 + 2048

// peekMeshHello reads the start of the stream, waiting at most timeout
// for the first bytes, and reports whether it is a TLS ClientHello
// offering MeshALPN. What it read is read again by the connection's next
// reader.
func (c *captureConn) peekMeshHello(timeout time.Duration) (bool, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	var hdr [5]byte
	n, err := io.ReadAtLeast(c.Conn, hdr[:], 1)
	c.prefix = append(c.prefix, hdr[:n]...)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil // the server speaks first: plaintext
		}
		return false, err
	}
	if hdr[0] != 0x16 { // not a TLS handshake record
		return false, nil
	}
	if n < len(hdr) {
		m, err := io.ReadFull(c.Conn, hdr[n:])
		c.prefix = append(c.prefix, hdr[n:n+m]...)
		if err != nil {
			return false, nilIfTimeout(err)
		}
	}
	size := int(hdr[3])<<8 | int(hdr[4])
	if 5+size > maxHelloRecord {
		return false, nil
	}
	rec := make([]byte, size)
	m, err := io.ReadFull(c.Conn, rec)
	c.prefix = append(c.prefix, rec[:m]...)
	if err != nil {
		return false, nilIfTimeout(err)
	}
	return slices.Contains(helloALPN(c.prefix), MeshALPN), nil
}

func nilIfTimeout(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

var errHelloSeen = errors.New("client hello seen")

// helloALPN parses a ClientHello record and returns the ALPN protocols
// it offers (nil if it is not a complete ClientHello).
func helloALPN(record []byte) []string {
	var protos []string
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		protos = slices.Clone(h.SupportedProtos)
		return nil, errHelloSeen
	}}
	_ = tls.Server(&replayConn{r: bytes.NewReader(record)}, cfg).Handshake()
	return protos
}

// replayConn reads from a buffer and discards writes: crypto/tls parses
// a recorded ClientHello from it.
type replayConn struct {
	r *bytes.Reader
}

func (c *replayConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *replayConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *replayConn) Close() error                       { return nil }
func (c *replayConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error        { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error    { return nil }
func (c *replayConn) SetWriteDeadline(t time.Time) error { return nil }
