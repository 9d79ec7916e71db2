package proxy

import "time"

// This file holds the parts of Config that only the mesh uses: sidecar
// capture, mesh identity and mTLS, and Istio's traffic-management
// features beyond plain routing (DestinationRule's traffic policy,
// VirtualService's faults, mirrors and CORS).

// Identity is a workload's mesh identity: its certificate (whose URI SAN
// is the SPIFFE ID, spiffe://TRUST-DOMAIN/ns/NS/sa/SA), key and the mesh
// roots that peers' certificates must chain to.
type Identity struct {
	CertPEM  []byte `json:"certPEM"`
	KeyPEM   []byte `json:"keyPEM"`
	RootsPEM []byte `json:"rootsPEM"`
}

// Direction says which side of a workload a capture listener serves.
type Direction string

const (
	// Inbound: connections to the workload (to the pod's own address).
	Inbound Direction = "inbound"
	// Outbound: connections from the workload to anywhere else.
	Outbound Direction = "outbound"
)

// Capture is a transparent listener's dispatch: each accepted connection
// goes to the first FilterChain whose Match fits its original
// destination (SO_ORIGINAL_DST, as nftables' redirect left it).
type Capture struct {
	Direction Direction     `json:"direction"`
	Chains    []FilterChain `json:"chains,omitempty"`
	// Unmatched is what happens to a connection no chain matches:
	// "passthrough" (the default) connects to the original destination
	// as TCP, Istio's ALLOW_ANY; "blackhole" closes it, REGISTRY_ONLY.
	Unmatched UnmatchedPolicy `json:"unmatched,omitempty"`
}

// UnmatchedPolicy is Capture.Unmatched.
type UnmatchedPolicy string

const (
	Passthrough UnmatchedPolicy = "passthrough"
	Blackhole   UnmatchedPolicy = "blackhole"
)

// FilterChain is what a capture listener does with the connections it
// matches: serve them as HTTP with RouteTable, or forward them whole to
// TCPCluster (or, when both are empty, to the original destination).
type FilterChain struct {
	Name  string     `json:"name"`
	Match ChainMatch `json:"match,omitzero"`
	// RouteTable serves the connection as HTTP (HTTP/1.1, and HTTP/2
	// with prior knowledge or by ALPN under mTLS).
	RouteTable string `json:"routeTable,omitempty"`
	// TCPCluster forwards the connection to one of the cluster's
	// endpoints.
	TCPCluster string `json:"tcpCluster,omitempty"`
	// MTLS is the inbound mesh mTLS mode (PeerAuthentication); unused
	// on outbound chains.
	MTLS MTLSMode `json:"mtls,omitempty"`
}

// ChainMatch selects connections by original destination; an empty
// field matches anything.
type ChainMatch struct {
	// Port is the original destination port (0: any).
	Port uint32 `json:"port,omitempty"`
	// Addresses are destination IPs or CIDRs ("10.96.0.10",
	// "10.0.0.0/8").
	Addresses []string `json:"addresses,omitempty"`
}

// MTLSMode is Istio's PeerAuthentication mode for an inbound chain.
type MTLSMode string

const (
	// MTLSDisable (the zero value) accepts plaintext only.
	MTLSDisable MTLSMode = ""
	// MTLSPermissive accepts mesh mTLS and plaintext (told apart by the
	// first bytes: a TLS ClientHello offering the mesh ALPN).
	MTLSPermissive MTLSMode = "permissive"
	// MTLSStrict accepts mesh mTLS only: a client certificate chaining to
	// Identity.RootsPEM is required.
	MTLSStrict MTLSMode = "strict"
)

// MeshALPN is the ALPN protocol a sidecar offers when it originates mesh
// mTLS, so that a permissive server can tell mesh traffic from an app's
// own TLS (Istio offers "istio", "istio-peer-exchange", "istio-http/1.1",
// ...).
const MeshALPN = "istio"

// Fault is Istio's HTTPFaultInjection: a delay before forwarding and/or
// an abort instead of forwarding, each applied to a percentage of
// requests.
type Fault struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays Percent of requests by Fixed (flag DI).
type FaultDelay struct {
	Fixed time.Duration `json:"fixed"`
	// Percent is 0–100 (fractions allowed).
	Percent float64 `json:"percent"`
}

// FaultAbort answers Percent of requests with Status (flag FI), or, for
// gRPC requests, with GRPCStatus when that is set.
type FaultAbort struct {
	Status     int     `json:"status,omitempty"`
	GRPCStatus string  `json:"grpcStatus,omitempty"`
	Percent    float64 `json:"percent"`
}

// Mirror copies Percent of requests (100 when 0 is not meant: the
// translator sets it) to Cluster; the copy's authority gets "-shadow"
// appended, as Envoy does, and its answer is dropped.
type Mirror struct {
	Cluster string  `json:"cluster"`
	Percent float64 `json:"percent"`
}

// CORSPolicy is Istio's CorsPolicy.
type CORSPolicy struct {
	AllowOrigins     []StringMatch `json:"allowOrigins,omitempty"`
	AllowMethods     []string      `json:"allowMethods,omitempty"`
	AllowHeaders     []string      `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string      `json:"exposeHeaders,omitempty"`
	MaxAge           time.Duration `json:"maxAge,omitempty"`
	AllowCredentials bool          `json:"allowCredentials,omitempty"`
}

// HashPolicy is what a consistent-hash cluster hashes (exactly one).
type HashPolicy struct {
	Header   string      `json:"header,omitempty"`
	Cookie   *HashCookie `json:"cookie,omitempty"`
	SourceIP bool        `json:"sourceIP,omitempty"`
	Query    string      `json:"query,omitempty"`
	// MinimumRingSize is Istio's ringHash minimumRingSize (default 1024).
	MinimumRingSize int `json:"minimumRingSize,omitempty"`
}

// HashCookie hashes a cookie; with TTL set the proxy sets the cookie
// when the request has none, so that the client sticks from then on.
type HashCookie struct {
	Name string        `json:"name"`
	Path string        `json:"path,omitempty"`
	TTL  time.Duration `json:"ttl,omitempty"`
}

// ConnectionPool is DestinationRule's connectionPool; 0 means no limit
// for each field (Istio's defaults are 2^32-1).
type ConnectionPool struct {
	// MaxConnections bounds connections to the cluster, all endpoints
	// together.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxPendingRequests bounds requests waiting for a connection
	// (http1MaxPendingRequests).
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	// MaxRequests bounds requests in flight (http2MaxRequests).
	MaxRequests int `json:"maxRequests,omitempty"`
	// MaxRequestsPerConnection closes a connection after this many
	// requests (1 disables keep-alive).
	MaxRequestsPerConnection int `json:"maxRequestsPerConnection,omitempty"`
	// MaxRetries bounds retries in flight across the cluster.
	MaxRetries int `json:"maxRetries,omitempty"`
	// IdleTimeout overrides Cluster.IdleTimeout (idleTimeout).
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection is DestinationRule's outlierDetection: an endpoint
// that answers Consecutive5xx 5xx answers (or ConsecutiveGatewayErrors
// 502/503/504 and connection failures) in a row is ejected for
// BaseEjectionTime × times-ejected, checked every Interval, never
// ejecting more than MaxEjectionPercent of the endpoints.
type OutlierDetection struct {
	Consecutive5xx           int           `json:"consecutive5xx,omitempty"`
	ConsecutiveGatewayErrors int           `json:"consecutiveGatewayErrors,omitempty"`
	Interval                 time.Duration `json:"interval,omitempty"`
	BaseEjectionTime         time.Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent       int           `json:"maxEjectionPercent,omitempty"`
	// MinHealthPercent disables ejection while fewer than this percent
	// of endpoints are healthy.
	MinHealthPercent int `json:"minHealthPercent,omitempty"`
}

// TLSMode is DestinationRule's ClientTLSSettings mode.
type TLSMode string

const (
	TLSDisable TLSMode = "DISABLE"
	TLSSimple  TLSMode = "SIMPLE"
	TLSMutual  TLSMode = "MUTUAL"
	// TLSIstioMutual uses Config.Identity and verifies the peer's SPIFFE
	// ID against SubjectAltNames (any mesh identity when empty).
	TLSIstioMutual TLSMode = "ISTIO_MUTUAL"
)

// UpstreamTLS originates TLS to a cluster's endpoints.
type UpstreamTLS struct {
	Mode TLSMode `json:"mode"`
	// Auto applies the mode only to endpoints with Mesh set and sends
	// plaintext to the others (Istio's auto mTLS).
	Auto bool   `json:"auto,omitempty"`
	SNI  string `json:"sni,omitempty"`
	// SubjectAltNames the server's certificate must carry (SPIFFE IDs for
	// IstioMutual, DNS names otherwise); empty accepts any that chains.
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// CACertPEM verifies the server for Simple and Mutual (system roots
	// when empty); ClientCertPEM/ClientKeyPEM are Mutual's client cert.
	CACertPEM          []byte `json:"caCertPEM,omitempty"`
	ClientCertPEM      []byte `json:"clientCertPEM,omitempty"`
	ClientKeyPEM       []byte `json:"clientKeyPEM,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
}
