// Package ingress is Skiff's Ingress controller: a node component that
// serves networking.k8s.io/v1 Ingresses of the IngressClass "skiff"
// (controller skiff.dev/ingress, the default class) on the node's ports 80
// and 443 through the shared L7 proxy (internal/mesh/proxy).
//
// The controller watches Ingresses, IngressClasses, Services,
// EndpointSlices and Secrets (and Nodes, for status addresses), and on any
// relevant change translates every Ingress it serves into one proxy
// configuration (Translate, a pure function): host and path rules with
// Ingress's matching rules (Exact, Prefix element-wise,
// ImplementationSpecific as Prefix; the longest path wins), default
// backends, service backends by port name or number resolved to the ready
// endpoints of the Service's EndpointSlices, TLS certificates from Secrets
// chosen by SNI (a self-signed default otherwise). Rules that several
// Ingresses define are merged as ingress-nginx merges them: the oldest
// Ingress wins. A missing Service, port or Secret is reported as a Warning
// event on the Ingress, and only the paths concerned answer 503 (or use
// the default certificate). The controller writes
// status.loadBalancer.ingress.
//
// Beyond the Ingress spec, two annotations: skiff.dev/load-balance
// (round-robin, least-request, random) and skiff.dev/timeout (a duration
// bounding each request). Upstreams get X-Forwarded-For/-Proto/-Host,
// X-Real-IP and X-Request-Id; a failed connection is retried on another
// endpoint (twice); WebSocket upgrades and HTTP/2 (TLS, ALPN) pass
// through; a Service port with appProtocol kubernetes.io/h2c is spoken to
// in h2c (gRPC).
//
// With Options.Gateway (internal/mesh/control's GatewayWatcher) the same
// proxy also serves Istio Gateways that select istio=ingressgateway: a
// Gateway port the Ingress listeners use joins them (Ingress rules keep
// the hosts they name), other ports get listeners of their own. When
// the proxy rejects the combined configuration, Ingresses alone are
// served.
//
// Only the daemon should import this package (New, Run,
// EnsureIngressClass).
package ingress
