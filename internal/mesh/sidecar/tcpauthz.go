package sidecar

import (
	"errors"
	"fmt"
	"net/netip"

	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// errDenied is what a denied TCP connection is closed with.
var errDenied = errors.New("rbac: access denied")

// authorizeConn is the proxy's AuthorizeConn: the current engine's
// CheckConn (Istio's RBAC network filter) on the connection's source
// principal, source IP and original destination. No engine or an empty
// one allows everything.
func (s *Sidecar) authorizeConn(c *proxy.TCPConn) error {
	e := s.engine.Load()
	if e == nil {
		return nil
	}
	req := ConnRequest(c)
	d := e.CheckConn(&req)
	for _, a := range d.Audited {
		s.log.Info("authorization audit", "policy", a, "sourcePrincipal", req.SourcePrincipal,
			"source", c.Source, "dst", c.OriginalDst)
	}
	for _, a := range d.DryRun {
		s.log.Info("authorization dry run", "result", a, "source", c.Source, "dst", c.OriginalDst)
	}
	if !d.Allowed {
		return fmt.Errorf("%w: %s", errDenied, d.Reason())
	}
	return nil
}

// ConnRequest is the authorization request for a TCP connection.
func ConnRequest(c *proxy.TCPConn) authz.Request {
	req := authz.Request{SourcePrincipal: c.PeerPrincipal}
	if ap, err := netip.ParseAddrPort(c.Source); err == nil {
		req.SourceIP = ap.Addr().Unmap()
		req.RemoteIP = req.SourceIP
	}
	if ap, err := netip.ParseAddrPort(c.OriginalDst); err == nil {
		req.DestinationIP, req.DestinationPort = ap.Addr().Unmap(), ap.Port()
	}
	return req
}
