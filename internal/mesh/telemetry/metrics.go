// Package telemetry is the mesh's standard metrics, as Istio's: request
// counts, durations and sizes for HTTP (a proxy.Middleware) and byte and
// connection counts for TCP (hooks the sidecar's TCP forwarding calls),
// labelled with both workloads, the service and the outcome, in Prometheus
// form. The peer's workload is learnt by metadata exchange: sidecars pass
// a compact description of their workload in the PeerHeader request and
// response header and remove the other side's before the app sees it.
// The middleware also makes sure apps see W3C trace context.
//
// Sidecars (cmd/skiff-proxy, internal/mesh/sidecar) and gateways import
// it; it imports only the proxy and meshconfig contracts.
package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Label values.
const (
	Unknown = "unknown"
	// DefaultCluster is the cluster ID a workload reports (Istio's
	// default, "Kubernetes").
	DefaultCluster = "Kubernetes"

	reporterSource      = "source"
	reporterDestination = "destination"
)

// maxLabelLen clamps every label value, so that nothing a peer or a
// client sends can blow up the series or their size.
const maxLabelLen = 128

// buckets are Envoy's default histogram bounds, which Istio's standard
// histograms use (milliseconds for durations, bytes for sizes).
var buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000, 600000, 1800000, 3600000}

// The labels of Istio's standard metrics, in order. HTTP metrics have
// all of them; TCP metrics all but response_code and
// grpc_response_status.
const (
	lReporter = iota
	lSrcWorkload
	lSrcNamespace
	lSrcPrincipal
	lSrcApp
	lSrcVersion
	lSrcCanonicalService
	lSrcCanonicalRevision
	lSrcCluster
	lDstWorkload
	lDstNamespace
	lDstPrincipal
	lDstApp
	lDstVersion
	lDstService
	lDstServiceName
	lDstServiceNamespace
	lDstCanonicalService
	lDstCanonicalRevision
	lDstCluster
	lProtocol
	lResponseFlags
	lSecurityPolicy
	lResponseCode // HTTP only from here
	lGRPCStatus
	numLabels
	numTCPLabels = lResponseCode
)

var labelNames = [numLabels]string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	"source_canonical_service", "source_canonical_revision", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_service", "destination_service_name", "destination_service_namespace",
	"destination_canonical_service", "destination_canonical_revision", "destination_cluster",
	"request_protocol", "response_flags", "connection_security_policy",
	"response_code", "grpc_response_status",
}

// Metrics is one proxy's standard metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	requestBytes  *prometheus.HistogramVec
	responseBytes *prometheus.HistogramVec
	tcpSent       *prometheus.CounterVec
	tcpReceived   *prometheus.CounterVec
	tcpOpened     *prometheus.CounterVec
	tcpClosed     *prometheus.CounterVec

	local atomic.Pointer[local]
	peers peerCache

	// With AccessLog wired, the middleware notes the requests it records
	// (RequestInfo → its Start), so that the access logger records the
	// others.
	logging atomic.Bool
	seen    sync.Map

	seriesMu sync.RWMutex
	series   map[string]*series
}

// local is the proxy's own workload, ready for use.
type local struct {
	peer   peer
	header []string // PeerHeader value
}

// New creates the metrics for a proxy serving the local workload and
// registers them with reg (nil: not registered).
func New(reg prometheus.Registerer, w meshconfig.Workload) (*Metrics, error) {
	http := labelNames[:]
	tcp := labelNames[:numTCPLabels]
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_requests_total",
			Help: "Requests handled by the proxy."}, http),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_request_duration_milliseconds",
			Help: "Request durations in milliseconds.", Buckets: buckets}, http),
		requestBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_request_bytes",
			Help: "Request body sizes in bytes.", Buckets: buckets}, http),
		responseBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_response_bytes",
			Help: "Response body sizes in bytes.", Buckets: buckets}, http),
		tcpSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_tcp_sent_bytes_total",
			Help: "Bytes sent to the client on TCP connections (the response direction)."}, tcp),
		tcpReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_tcp_received_bytes_total",
			Help: "Bytes received from the client on TCP connections (the request direction)."}, tcp),
		tcpOpened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_tcp_connections_opened_total",
			Help: "TCP connections opened."}, tcp),
		tcpClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_tcp_connections_closed_total",
			Help: "TCP connections closed."}, tcp),
	}
	m.SetLocal(w)
	if reg != nil {
		var errs []error
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.requestBytes, m.responseBytes,
			m.tcpSent, m.tcpReceived, m.tcpOpened, m.tcpClosed} {
			if err := reg.Register(c); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("telemetry: registering metrics: %w: %w", errdefs.ErrAlreadyExists, errors.Join(errs...))
		}
	}
	return m, nil
}

// SetLocal replaces the local workload (the sidecar got a new document);
// requests from then on are labelled with it.
func (m *Metrics) SetLocal(w meshconfig.Workload) {
	p := peer{Workload: w.Name, Namespace: w.Namespace, App: w.App, Version: w.Version,
		CanonicalService: w.CanonicalService, CanonicalRevision: w.CanonicalRevision,
		Principal: w.Principal, Cluster: DefaultCluster}
	p.clamp()
	m.local.Store(&local{peer: p, header: []string{p.encode()}})
}

// clampLabel makes s a bounded, valid label value; "" becomes Unknown.
func clampLabel(s string) string {
	if s == "" {
		return Unknown
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if len(s) > maxLabelLen {
		n := maxLabelLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// principalLabel is a principal as Istio labels it: a SPIFFE URI.
func principalLabel(p string) string {
	if p == "" {
		return Unknown
	}
	return clampLabel("spiffe://" + p)
}

// labels is one request's or connection's label values.
type labels [numLabels]string

// endpoints fills the source and destination labels from the two
// workloads (nil: unknown).
func (l *labels) endpoints(src, dst *peer) {
	set := func(w *peer, workload, ns, app, ver, cs, cr, cluster int) {
		if w == nil {
			w = &unknownPeer
		}
		l[workload], l[ns], l[app], l[ver] = w.Workload, w.Namespace, w.App, w.Version
		l[cs], l[cr], l[cluster] = w.CanonicalService, w.CanonicalRevision, w.Cluster
	}
	set(src, lSrcWorkload, lSrcNamespace, lSrcApp, lSrcVersion, lSrcCanonicalService, lSrcCanonicalRevision, lSrcCluster)
	set(dst, lDstWorkload, lDstNamespace, lDstApp, lDstVersion, lDstCanonicalService, lDstCanonicalRevision, lDstCluster)
}

// service fills the destination service labels from the cluster's
// metadata (the control plane fills it).
func (l *labels) service(md map[string]string) {
	l[lDstService] = clampLabel(md["destination_service"])
	l[lDstServiceName] = clampLabel(md["destination_service_name"])
	l[lDstServiceNamespace] = clampLabel(md["destination_service_namespace"])
}
