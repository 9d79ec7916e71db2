package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
)

// This file originates TLS to a cluster's endpoints (DestinationRule's
// trafficPolicy.tls): SIMPLE verifies the server against CACertPEM (or
// the system roots) and SubjectAltNames (or the SNI when none are
// given); MUTUAL adds a client certificate; ISTIO_MUTUAL presents the
// proxy's mesh identity, trusts only the mesh roots, checks the server's
// SPIFFE ID against SubjectAltNames (any mesh identity when empty) and
// offers MeshALPN so that a permissive sidecar recognises mesh traffic.
// With Auto only endpoints with Endpoint.Mesh get TLS. The identity is
// read per handshake, so a rotated identity (a new Config) is used by new
// connections at once while pooled ones live on until idle.

// meshIdentity is a parsed Config.Identity.
type meshIdentity struct {
	cert  *tls.Certificate
	roots *x509.CertPool
	// uri is the identity's SPIFFE ID ("spiffe://..."), if it has one.
	uri string
}

// parseIdentity parses id (nil gives nil).
func parseIdentity(id *Identity) (*meshIdentity, error) {
	if id == nil {
		return nil, nil
	}
	cert, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(id.RootsPEM) {
		return nil, errors.New("rootsPEM: no certificate")
	}
	mid := &meshIdentity{cert: &cert, roots: roots}
	if cert.Leaf != nil {
		if p := principalOf(cert.Leaf); p != "" {
			mid.uri = "spiffe://" + p
		}
	}
	return mid, nil
}

// upstreamTLS is a cluster's compiled UpstreamTLS.
type upstreamTLS struct {
	mode TLSMode
	auto bool
	cfg  *tls.Config
	// id is the proxy's current mesh identity (ISTIO_MUTUAL).
	id *atomic.Pointer[meshIdentity]
}

// tlsKey identifies an UpstreamTLS's settings (the cluster keeps its
// pools while it is unchanged).
func tlsKey(in *UpstreamTLS) string {
	if in == nil || in.Mode == TLSDisable || in.Mode == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s|%t|%s|%t|%q|", in.Mode, in.Auto, in.SNI, in.InsecureSkipVerify, in.SubjectAltNames)
	for _, b := range [][]byte{in.CACertPEM, in.ClientCertPEM, in.ClientKeyPEM} {
		fmt.Fprintf(h, "%d|", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compileTLS validates in and builds its client configuration; id is the
// cluster's identity slot. nil (no error) means plaintext.
func compileTLS(in *UpstreamTLS, protocol Protocol, tcp bool, id *atomic.Pointer[meshIdentity], haveIdentity bool) (*upstreamTLS, error) {
	if in == nil {
		return nil, nil
	}
	switch in.Mode {
	case TLSDisable, "":
		return nil, nil
	case TLSSimple, TLSMutual, TLSIstioMutual:
	default:
		return nil, fmt.Errorf("mode: unknown %q", in.Mode)
	}
	u := &upstreamTLS{mode: in.Mode, auto: in.Auto, id: id}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: in.SNI,
		// Verification is VerifyConnection's: Go's own would insist on
		// a server name, where Envoy checks the chain and the listed
		// SANs only.
		InsecureSkipVerify: true,
	}
	switch {
	case tcp:
		cfg.NextProtos = nil
	case protocol == ProtocolH2C:
		cfg.NextProtos = []string{"h2"}
	default:
		cfg.NextProtos = []string{"http/1.1"}
	}
	var roots *x509.CertPool
	if in.Mode == TLSIstioMutual {
		if !haveIdentity {
			return nil, errors.New("mode: ISTIO_MUTUAL needs the config's identity")
		}
		cfg.NextProtos = append([]string{MeshALPN}, cfg.NextProtos...)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := id.Load(); m != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil
		}
	} else {
		if len(in.CACertPEM) > 0 {
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(in.CACertPEM) {
				return nil, errors.New("caCertPEM: no certificate")
			}
		}
		if in.Mode == TLSMutual {
			if len(in.ClientCertPEM) == 0 || len(in.ClientKeyPEM) == 0 {
				return nil, errors.New("clientCertPEM, clientKeyPEM: required with MUTUAL")
			}
			cert, err := tls.X509KeyPair(in.ClientCertPEM, in.ClientKeyPEM)
			if err != nil {
				return nil, fmt.Errorf("clientCertPEM: %v", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if !in.InsecureSkipVerify {
		sans := slices.Clone(in.SubjectAltNames)
		mode, sni := in.Mode, in.SNI
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			pool := roots
			if mode == TLSIstioMutual {
				m := id.Load()
				if m == nil {
					return errors.New("no mesh identity to verify the server with")
				}
				pool = m.roots
			}
			return verifyServer(cs, pool, mode, sans, sni)
		}
	}
	u.cfg = cfg
	return u, nil
}

// verifyServer checks the server's chain against roots (system roots when
// nil) and its SANs.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, mode TLSMode, sans []string, sni string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	switch {
	case len(sans) > 0:
		for _, want := range sans {
			if sanMatches(leaf, mode, want) {
				return nil
			}
		}
		return fmt.Errorf("server certificate matches none of the subject alt names %q", sans)
	case mode == TLSIstioMutual:
		for _, u := range leaf.URIs {
			if u.Scheme == "spiffe" {
				return nil
			}
		}
		return errors.New("server certificate has no SPIFFE ID")
	case sni != "":
		return leaf.VerifyHostname(sni)
	}
	return nil
}

func sanMatches(leaf *x509.Certificate, mode TLSMode, want string) bool {
	if mode == TLSIstioMutual && !strings.Contains(want, "://") {
		want = "spiffe://" + want
	}
	for _, u := range leaf.URIs {
		if u.String() == want {
			return true
		}
	}
	if mode == TLSIstioMutual {
		return false
	}
	return leaf.VerifyHostname(want) == nil || slices.Contains(leaf.EmailAddresses, want)
}

// forEndpoint is the client configuration for an endpoint, nil for
// plaintext.
func (u *upstreamTLS) forEndpoint(mesh bool) *tls.Config {
	if u == nil || (u.auto && !mesh) {
		return nil
	}
	return u.cfg
}

// handshake runs the TLS handshake over conn; a failure closes conn and
// counts as a failure to connect.
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	return tc, nil
}
