package proxy

import "time"

// Config is everything a Proxy serves. Hand a Config to Update and do not
// change it afterwards: the proxy keeps it (Proxy.Config returns it).
type Config struct {
	// Version names this configuration in logs and access logs.
	Version      string        `json:"version,omitempty"`
	Listeners    []Listener    `json:"listeners,omitempty"`
	RouteTables  []RouteTable  `json:"routeTables,omitempty"`
	Clusters     []Cluster     `json:"clusters,omitempty"`
	Certificates []Certificate `json:"certificates,omitempty"`
	// Identity is the proxy's own mesh identity (a sidecar's workload
	// certificate): it terminates mesh mTLS on capture listeners and
	// originates it to clusters with TLS mode IstioMutual.
	Identity *Identity `json:"identity,omitempty"`
}

// Listener is one address the proxy accepts connections on.
type Listener struct {
	Name string `json:"name"`
	// Address is host:port ("0.0.0.0:80", ":443", "127.0.0.1:0").
	Address string `json:"address"`
	// RouteTable names the RouteTable that routes this listener's
	// requests.
	RouteTable string `json:"routeTable"`
	// TLS, when set, terminates TLS (HTTP/1.1 and HTTP/2 by ALPN).
	TLS *ListenerTLS `json:"tls,omitempty"`
	// H2C accepts HTTP/2 without TLS (prior knowledge) on a plain
	// listener.
	H2C bool `json:"h2c,omitempty"`
	// TrustForwarded keeps X-Forwarded-Proto and X-Forwarded-Host from
	// the client (the proxy sits behind another proxy). Otherwise they
	// are overwritten; X-Forwarded-For is appended to either way.
	TrustForwarded bool `json:"trustForwarded,omitempty"`
	// Capture makes the listener transparent (a sidecar's inbound or
	// outbound port): it accepts connections redirected to it and
	// dispatches each by its original destination; RouteTable, TLS and
	// H2C are then unused (each FilterChain says what to do).
	Capture *Capture `json:"capture,omitempty"`
}

// ListenerTLS selects the certificate per connection by SNI.
type ListenerTLS struct {
	// Certificates names the Certificates this listener serves.
	Certificates []string `json:"certificates"`
	// DefaultCertificate answers clients whose SNI matches none (and
	// clients that send none); empty means the first of Certificates.
	DefaultCertificate string `json:"defaultCertificate,omitempty"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	Name    string `json:"name"`
	CertPEM []byte `json:"certPEM,omitempty"`
	KeyPEM  []byte `json:"keyPEM,omitempty"`
	// Hosts are the SNI names it answers (exact, or "*.example.com" for
	// one label); empty means the certificate's DNS names.
	Hosts []string `json:"hosts,omitempty"`
}

// RouteTable is a set of virtual hosts.
type RouteTable struct {
	Name         string        `json:"name"`
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
	// SingleLabelWildcards makes "*.example.com" match exactly one label
	// ("a.example.com", not "a.b.example.com"), as Ingress requires.
	// Otherwise it matches any name ending in ".example.com", as Envoy
	// and Istio do.
	SingleLabelWildcards bool `json:"singleLabelWildcards,omitempty"`
}

// VirtualHost is the routes for a set of authorities. The request's
// authority (Host header, port removed, lower-cased) picks the virtual
// host: an exact domain first, then the longest wildcard "*.suffix", then
// "*".
type VirtualHost struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	// Routes are tried in order; the first that matches wins.
	Routes []Route `json:"routes,omitempty"`
}

// Route matches requests and says what to do with them: forward to
// Clusters, answer with a Redirect, or answer with a DirectResponse
// (exactly one).
type Route struct {
	Name  string     `json:"name,omitempty"`
	Match RouteMatch `json:"match"`

	Clusters       []WeightedCluster `json:"clusters,omitempty"`
	Redirect       *Redirect         `json:"redirect,omitempty"`
	DirectResponse *DirectResponse   `json:"directResponse,omitempty"`

	// Rewrite changes the forwarded path or authority.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Timeout bounds the whole exchange with the upstream, retries
	// included, until the response is complete; 0 means none. For
	// upgraded connections it bounds the handshake only.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retry says when to try again; nil means DefaultRetry.
	Retry *RetryPolicy `json:"retry,omitempty"`

	RequestHeaders  HeaderOps `json:"requestHeaders,omitzero"`
	ResponseHeaders HeaderOps `json:"responseHeaders,omitzero"`

	// Fault injects delays and aborts (Istio's HTTPFaultInjection).
	Fault *Fault `json:"fault,omitempty"`
	// Mirrors copy requests to other clusters, fire and forget.
	Mirrors []Mirror `json:"mirrors,omitempty"`
	// CORS answers preflights and decorates responses.
	CORS *CORSPolicy `json:"cors,omitempty"`
}

// RouteMatch is a conjunction: every part given must match.
type RouteMatch struct {
	Path        PathMatch     `json:"path,omitzero"`
	Methods     []string      `json:"methods,omitempty"`
	Headers     []HeaderMatch `json:"headers,omitempty"`
	QueryParams []QueryMatch  `json:"queryParams,omitempty"`
}

// PathKind is how a PathMatch compares.
type PathKind string

const (
	// PathAny (the zero value) matches every path.
	PathAny PathKind = ""
	// PathExact matches the path exactly.
	PathExact PathKind = "exact"
	// PathPrefix matches paths that start with Value (string prefix, as
	// Istio's uri.prefix).
	PathPrefix PathKind = "prefix"
	// PathSegmentPrefix matches Value element by element, as Ingress's
	// Prefix: "/foo" and "/foo/" match "/foo", "/foo/" and "/foo/bar" but
	// not "/foobar".
	PathSegmentPrefix PathKind = "segment-prefix"
	// PathRegex matches the whole path against an RE2 expression.
	PathRegex PathKind = "regex"
)

// PathMatch compares the request's path (dot segments resolved, before
// any rewrite) without its query.
type PathMatch struct {
	Kind       PathKind `json:"kind,omitempty"`
	Value      string   `json:"value,omitempty"`
	IgnoreCase bool     `json:"ignoreCase,omitempty"`
}

// StringKind is how a StringMatch compares.
type StringKind string

const (
	StringExact   StringKind = "exact"
	StringPrefix  StringKind = "prefix"
	StringSuffix  StringKind = "suffix"
	StringRegex   StringKind = "regex" // whole value, RE2
	StringPresent StringKind = "present"
)

// StringMatch compares one value.
type StringMatch struct {
	Kind  StringKind `json:"kind"`
	Value string     `json:"value,omitempty"`
}

// HeaderMatch matches a request header (the first value). Names ":authority",
// ":method", ":path" and ":scheme" address the request line.
type HeaderMatch struct {
	Name string `json:"name"`
	StringMatch
	// Invert turns the match around (Istio's withoutHeaders); an absent
	// header then matches.
	Invert bool `json:"invert,omitempty"`
}

// QueryMatch matches a query parameter (the first value).
type QueryMatch struct {
	Name string `json:"name"`
	StringMatch
}

// WeightedCluster is a forwarding target; a request picks one target at
// random in proportion to the weights.
type WeightedCluster struct {
	Cluster string `json:"cluster"`
	// Weight is relative; with a single target it is ignored.
	Weight          uint32    `json:"weight,omitempty"`
	RequestHeaders  HeaderOps `json:"requestHeaders,omitzero"`
	ResponseHeaders HeaderOps `json:"responseHeaders,omitzero"`
}

// Redirect answers with a redirect built from the request's URL with the
// given parts replaced.
type Redirect struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	// Port replaces the port; 0 keeps the request's.
	Port uint32 `json:"port,omitempty"`
	// Path replaces the whole path.
	Path string `json:"path,omitempty"`
	// PrefixRewrite replaces the part matched by a prefix match.
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	StripQuery    bool   `json:"stripQuery,omitempty"`
	// Code is 301 (default), 302, 303, 307 or 308.
	Code int `json:"code,omitempty"`
}

// DirectResponse answers without an upstream.
type DirectResponse struct {
	Status      int    `json:"status"`
	Body        string `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

// Rewrite changes what is forwarded.
type Rewrite struct {
	// Prefix replaces the part of the path a prefix match matched (the
	// whole path for other matches).
	Prefix string `json:"prefix,omitempty"`
	// Regex with Substitution rewrites the path (Go regexp syntax, $1
	// references); it applies after Prefix.
	Regex        string `json:"regex,omitempty"`
	Substitution string `json:"substitution,omitempty"`
	// Host replaces the authority sent upstream.
	Host string `json:"host,omitempty"`
}

// HeaderOps edit headers: Remove, then Set (replace), then Add (append).
type HeaderOps struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RetryOn names a retry condition, with Envoy's and Istio's spellings.
type RetryOn string

const (
	// RetryConnectFailure: the connection to the endpoint failed.
	RetryConnectFailure RetryOn = "connect-failure"
	// RetryRefusedStream: an HTTP/2 upstream refused the stream.
	RetryRefusedStream RetryOn = "refused-stream"
	// RetryReset: the upstream closed or reset before answering, or a
	// per-try timeout expired.
	RetryReset RetryOn = "reset"
	// Retry5xx: any 5xx answer, and everything RetryReset covers.
	Retry5xx RetryOn = "5xx"
	// RetryGatewayError: 502, 503 and 504 answers, connection failures
	// and per-try timeouts.
	RetryGatewayError RetryOn = "gateway-error"
	// RetryRetriable4xx: a 409 answer.
	RetryRetriable4xx RetryOn = "retriable-4xx"
	// RetryStatusCodes: the answers listed in RetryPolicy.StatusCodes.
	RetryStatusCodes RetryOn = "retriable-status-codes"
)

// RetryPolicy says when a request is sent again, to another endpoint
// where there is one. A request whose body has already been sent is
// retried only if the body was small enough to keep (MaxRetryBody).
type RetryPolicy struct {
	// Attempts is the number of retries after the first try.
	Attempts int `json:"attempts"`
	// PerTryTimeout bounds each try; 0 means only Route.Timeout.
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty"`
	On            []RetryOn     `json:"on,omitempty"`
	StatusCodes   []int         `json:"statusCodes,omitempty"`
}

// DefaultRetry applies to routes without a RetryPolicy: two more tries,
// on other endpoints, when connecting fails (as Istio's default).
var DefaultRetry = RetryPolicy{Attempts: 2, On: []RetryOn{RetryConnectFailure, RetryRefusedStream}}

// MaxRetryBody is the largest request body (with a known length) kept in
// memory so that it can be sent again when a retry policy retries on
// answers; larger bodies are streamed and retried only when none of it
// was sent.
const MaxRetryBody = 64 << 10

// LBPolicy picks an endpoint.
type LBPolicy string

const (
	LBRoundRobin   LBPolicy = "round-robin" // the default
	LBLeastRequest LBPolicy = "least-request"
	LBRandom       LBPolicy = "random"
	// LBConsistentHash hashes the request per Cluster.Hash.
	LBConsistentHash LBPolicy = "consistent-hash"
)

// Protocol is how the proxy talks to a cluster's endpoints.
type Protocol string

const (
	ProtocolHTTP1 Protocol = "http1" // the default
	ProtocolH2C   Protocol = "h2c"   // HTTP/2 without TLS (gRPC)
)

// Cluster is a set of interchangeable endpoints.
type Cluster struct {
	Name     string   `json:"name"`
	LB       LBPolicy `json:"lb,omitempty"`
	Protocol Protocol `json:"protocol,omitempty"`
	// ConnectTimeout bounds establishing a connection (default 5s).
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty"`
	// MaxIdlePerEndpoint is the keep-alive pool per endpoint (default
	// 256).
	MaxIdlePerEndpoint int `json:"maxIdlePerEndpoint,omitempty"`
	// IdleTimeout closes pooled connections unused this long (default
	// 60s).
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// Endpoints can also be replaced on their own with SetEndpoints.
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	// Hash, with LB LBConsistentHash, picks the endpoint from a hash of
	// the request (sticky sessions).
	Hash *HashPolicy `json:"hash,omitempty"`
	// Pool limits connections and requests (the circuit breaker's
	// thresholds); a request over a limit gets 503 with flag UO.
	Pool *ConnectionPool `json:"pool,omitempty"`
	// Outlier ejects endpoints that keep failing.
	Outlier *OutlierDetection `json:"outlier,omitempty"`
	// TLS originates TLS to the endpoints; nil means plaintext.
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// Metadata describes the cluster to telemetry (Istio's
	// destination_service, destination_service_name,
	// destination_service_namespace, ...); the proxy copies it into
	// RequestInfo.ClusterMetadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// TCP makes the cluster a TCP one: FilterChains forward whole
	// connections to it (no HTTP).
	TCP bool `json:"tcp,omitempty"`
}

// Endpoint is one upstream address.
type Endpoint struct {
	// Address is host:port; a host name is resolved when connecting.
	Address string `json:"address"`
	// Mesh says the endpoint runs a sidecar: with TLS mode IstioMutual
	// and Auto, only such endpoints get mTLS (Istio's auto mTLS).
	Mesh bool `json:"mesh,omitempty"`
	// Labels are the endpoint's workload labels (telemetry and
	// debugging; subsets are clusters of their own).
	Labels map[string]string `json:"labels,omitempty"`
}

// Cluster defaults.
const (
	DefaultConnectTimeout     = 5 * time.Second
	DefaultMaxIdlePerEndpoint = 256
	DefaultIdleTimeout        = 60 * time.Second
)
