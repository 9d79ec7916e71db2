package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// This file compiles capture listeners (Listener.Capture) and picks a
// connection's FilterChain. Serving them is in capture_serve.go, mesh
// mTLS in capture_tls.go, TCP forwarding in capture_tcp.go.
//
// Filter chain selection follows Envoy's filter chain match, restricted
// to the two criteria a ChainMatch has:
//
//  1. destination port: chains whose Port equals the original
//     destination's port are considered first; only when none of them
//     matches the address are the chains without a Port (0) considered;
//  2. destination address: within that group, the chain whose Addresses
//     hold the longest prefix containing the original destination wins;
//     a chain without Addresses matches any address, as the shortest
//     prefix (/0).
//
// Among equally specific chains the first in Capture.Chains wins.

// captureSpec is a compiled Capture.
type captureSpec struct {
	direction Direction
	unmatched UnmatchedPolicy
	chains    []*chainSpec
	byName    map[string]*chainSpec
	// identity is the proxy's mesh identity, parsed (nil without one).
	identity *meshIdentity
}

// chainSpec is a compiled FilterChain.
type chainSpec struct {
	name     string
	port     uint16
	prefixes []netip.Prefix
	mtls     MTLSMode
	// http, for HTTP chains, is what the handler chain routes with (its
	// hosts are the chain's route table).
	http *listenerSpec
	// tcp is the TCP chain's cluster; nil forwards to the original
	// destination.
	tcp         *cluster
	tcpMetadata map[string]string
}

// match picks the chain for a connection to dst (nil: none matches).
func (cs *captureSpec) match(dst netip.AddrPort) *chainSpec {
	if c := cs.matchIn(dst, dst.Port()); c != nil {
		return c
	}
	return cs.matchIn(dst, 0)
}

func (cs *captureSpec) matchIn(dst netip.AddrPort, port uint16) *chainSpec {
	var best *chainSpec
	bestBits := -1
	addr := dst.Addr().Unmap()
	for _, c := range cs.chains {
		if c.port != port {
			continue
		}
		bits := -1
		if len(c.prefixes) == 0 {
			bits = 0
		}
		for _, p := range c.prefixes {
			if p.Contains(addr) && p.Bits() > bits {
				bits = p.Bits()
			}
		}
		if bits > bestBits {
			best, bestBits = c, bits
		}
	}
	return best
}

// capture compiles l.Capture for the listener spec.
func (c *compiler) capture(f string, cfg *Config, l *Listener) *captureSpec {
	in := l.Capture
	cs := &captureSpec{direction: in.Direction, unmatched: in.Unmatched, byName: map[string]*chainSpec{}}
	switch in.Direction {
	case Inbound, Outbound:
	default:
		c.errorf("%s.capture.direction: %q (inbound or outbound)", f, in.Direction)
	}
	switch in.Unmatched {
	case "":
		cs.unmatched = Passthrough
	case Passthrough, Blackhole:
	default:
		c.errorf("%s.capture.unmatched: %q (passthrough or blackhole)", f, in.Unmatched)
	}
	needIdentity := false
	for i := range in.Chains {
		fc := &in.Chains[i]
		cf := fmt.Sprintf("%s.capture.chains[%d]", f, i)
		ch := &chainSpec{name: fc.Name, mtls: fc.MTLS}
		if fc.Name == "" {
			c.errorf("%s.name: required", cf)
		} else if _, dup := cs.byName[fc.Name]; dup {
			c.errorf("%s.name: duplicate %q", cf, fc.Name)
		}
		if fc.Match.Port > 65535 {
			c.errorf("%s.match.port: %d", cf, fc.Match.Port)
		}
		ch.port = uint16(fc.Match.Port)
		for k, a := range fc.Match.Addresses {
			p, err := parsePrefix(a)
			if err != nil {
				c.errorf("%s.match.addresses[%d]: %v", cf, k, err)
				continue
			}
			ch.prefixes = append(ch.prefixes, p)
		}
		switch fc.MTLS {
		case MTLSDisable:
		case MTLSPermissive, MTLSStrict:
			if in.Direction == Inbound {
				needIdentity = true
			} else {
				ch.mtls = MTLSDisable // unused on outbound chains
			}
		default:
			c.errorf("%s.mtls: unknown mode %q", cf, fc.MTLS)
		}
		switch {
		case fc.RouteTable != "" && fc.TCPCluster != "":
			c.errorf("%s: routeTable and tcpCluster are exclusive", cf)
		case fc.RouteTable != "":
			hosts := c.tables[fc.RouteTable]
			if hosts == nil {
				c.errorf("%s.routeTable: no route table %q", cf, fc.RouteTable)
			}
			if in.Direction == Outbound && in.Unmatched != Blackhole {
				hosts = withPassthrough(hosts)
			}
			// A sidecar is transparent: the app's own X-Forwarded-Proto
			// and -Host pass (as Envoy's sidecars keep them).
			ch.http = &listenerSpec{name: l.Name, address: l.Address, hosts: hosts, trust: true}
		case fc.TCPCluster != "":
			if ch.tcp = c.clusters[fc.TCPCluster]; ch.tcp == nil {
				c.errorf("%s.tcpCluster: no cluster %q", cf, fc.TCPCluster)
			}
			for k := range cfg.Clusters {
				if cfg.Clusters[k].Name == fc.TCPCluster {
					ch.tcpMetadata = cfg.Clusters[k].Metadata
				}
			}
		}
		cs.chains = append(cs.chains, ch)
		if fc.Name != "" {
			cs.byName[fc.Name] = ch
		}
	}
	cs.identity = c.meshID
	if cfg.Identity == nil && needIdentity {
		c.errorf("%s.capture: chains with mtls need the config's identity", f)
	}
	return cs
}

// parsePrefix reads an IP ("10.96.0.10") or a CIDR ("10.0.0.0/8").
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// connMeta is what a capture listener learnt about a connection; HTTP
// requests on it find it in their context.
type connMeta struct {
	listener  string
	chain     string
	dst       netip.AddrPort
	principal string
	// xfcc is the X-Forwarded-Client-Cert value for requests on a mesh
	// mTLS connection.
	xfcc []string
}

type connMetaKey struct{}

// connContext is the capture HTTP server's ConnContext: it puts the
// connection's connMeta into every request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	switch tc := c.(type) {
	case *tls.Conn:
		c = tc.NetConn()
	case tlsH1Conn:
		c = tc.NetConn()
	}
	if cc, ok := c.(*captureConn); ok {
		return context.WithValue(ctx, connMetaKey{}, &cc.meta)
	}
	return ctx
}

// captureRequest fills a capture listener's request's RequestInfo and
// returns the listener spec to route it with: the chain's, in the
// configuration now in effect (nil when the chain is gone: the request is
// refused).
//
// X-Forwarded-Client-Cert is sanitized as Envoy's SANITIZE_SET, Istio's
// default for sidecars: the client's own is removed, and requests that
// came over mesh mTLS get one naming this proxy (By), the client's
// certificate (Hash) and identity (URI).
func captureRequest(info *RequestInfo, l *listenerSpec, r *http.Request) *listenerSpec {
	info.Direction = l.capture.direction
	delete(r.Header, "X-Forwarded-Client-Cert")
	m, _ := r.Context().Value(connMetaKey{}).(*connMeta)
	if m == nil {
		return nil
	}
	if m.xfcc != nil {
		r.Header["X-Forwarded-Client-Cert"] = m.xfcc
	}
	info.FilterChain, info.PeerPrincipal = m.chain, m.principal
	info.OriginalDst = m.dst.String()
	if ch := l.capture.byName[m.chain]; ch != nil {
		return ch.http
	}
	return nil
}
