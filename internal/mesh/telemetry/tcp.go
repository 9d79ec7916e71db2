package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// TCPConn describes a TCP connection the sidecar forwards whole.
type TCPConn struct {
	Direction proxy.Direction
	// ClusterMetadata is the TCP cluster's Cluster.Metadata (the
	// destination service).
	ClusterMetadata map[string]string
	// PeerPrincipal is the client's mesh identity on inbound mTLS
	// connections (as RequestInfo.PeerPrincipal).
	PeerPrincipal string
}

// TCPStream counts one connection's traffic; every method is safe for
// concurrent use (each copying direction calls its own).
type TCPStream struct {
	sent, received prometheus.Counter
	closed         prometheus.Counter
	done           atomic.Bool
}

// TCP counts a connection as opened and returns what counts its bytes
// and its closing. TCP carries no metadata exchange: the peer's workload
// is unknown.
func (m *Metrics) TCP(c TCPConn) *TCPStream {
	loc := m.local.Load()
	var l labels
	if c.Direction == proxy.Inbound {
		l.endpoints(nil, &loc.peer)
		l[lReporter] = reporterDestination
		l[lSrcPrincipal], l[lDstPrincipal], l[lSecurityPolicy] = Unknown, Unknown, "none"
		if c.PeerPrincipal != "" {
			l[lSrcNamespace] = namespaceOf(c.PeerPrincipal)
			l[lSrcPrincipal], l[lDstPrincipal] = principalLabel(c.PeerPrincipal), loc.peer.principal
			l[lSecurityPolicy] = "mutual_tls"
		}
	} else {
		l.endpoints(&loc.peer, nil)
		l[lReporter] = reporterSource
		l[lSrcPrincipal], l[lDstPrincipal], l[lSecurityPolicy] = Unknown, Unknown, Unknown
	}
	l.service(c.ClusterMetadata)
	l[lProtocol] = "tcp"
	l[lResponseFlags] = "-"
	lv := l[:numTCPLabels]
	m.tcpOpened.WithLabelValues(lv...).Inc()
	return &TCPStream{sent: m.tcpSent.WithLabelValues(lv...), received: m.tcpReceived.WithLabelValues(lv...),
		closed: m.tcpClosed.WithLabelValues(lv...)}
}

// Received counts n bytes from the client toward the server (the request
// direction).
func (s *TCPStream) Received(n int) {
	if n > 0 {
		s.received.Add(float64(n))
	}
}

// Sent counts n bytes from the server toward the client (the response
// direction).
func (s *TCPStream) Sent(n int) {
	if n > 0 {
		s.sent.Add(float64(n))
	}
}

// Close counts the connection as closed; later calls do nothing.
func (s *TCPStream) Close() {
	if s.done.CompareAndSwap(false, true) {
		s.closed.Inc()
	}
}
