// Package proxy is Skiff's L7 data plane: an HTTP reverse proxy engine
// built on net/http, shared by the Ingress controller (internal/ingress)
// and, later, the mesh's gateways and sidecars (internal/mesh/...).
//
// A Proxy serves a versioned, immutable Config: listeners (plain, TLS with
// SNI certificate selection, HTTP/1.1 and HTTP/2, optionally h2c), route
// tables (virtual hosts by authority, ordered routes matching path,
// method, headers and query parameters; actions that forward to weighted
// clusters, redirect or answer directly) and clusters (endpoint lists,
// load balancing, retries, timeouts, keep-alive pools). Update validates
// and compiles a new Config and swaps it in atomically; a Config that does
// not validate is rejected and the previous one keeps serving. Requests in
// flight finish on the configuration they started with.
//
// Every listener runs the same ordered handler chain, each stage a
// Middleware (func(http.Handler) http.Handler):
//
//	access log → request id → forwarded headers → route → [extra] → cluster
//
// Per-request state (the chosen route, response flags, upstream host,
// byte counts) travels in a RequestInfo, reachable from the
// ResponseWriter with Info. Response flags use Envoy's letters (UF, UH,
// UT, NR, URX, UC, DC, ...) so that the mesh's telemetry can report them
// under Istio's names.
//
// Error answers: 404 (NR) when no route matches, 503 (UH) when the
// cluster has no endpoints, 502 (UF/UC) when no endpoint answers, 504 (UT)
// when a timeout expires.
//
// Upstream connections: each endpoint has its own keep-alive pool, so that
// an endpoint leaving closes exactly its connections. Requests without a
// body that do not upgrade (most of them) use a plain HTTP/1.1 client that
// reads the answer on the handler's goroutine; the others, and h2c
// clusters, go through net/http's Transport.
//
// For the mesh: Istio's VirtualService maps onto Route (matches, weighted
// destinations, rewrite, redirect, direct response, header operations,
// timeout, retries, and fault injection, mirrors and CORS) and
// DestinationRule onto Cluster (load balancing; a subset is a cluster of
// its own). On forwarding routes, the order is Envoy's under Istio: the
// fault (a delay that the route's timeout does not include, then an
// abort, flags DI and FI), then CORS (preflights from allowed origins
// answered, answers to allowed origins decorated), then mirrors (copies
// sent in the background) and forwarding; the percentages are drawn with
// Options.Random. Redirect and direct-response routes ignore these three.
// The rest — authorization, telemetry — comes as Options.Middleware
// stages, which see the chosen route, and after forwarding the cluster's
// Metadata, through Info.
//
// The package keeps no global state; New has no side effects; Run serves
// until its context ends.
package proxy
