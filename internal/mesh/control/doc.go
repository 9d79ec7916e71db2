// Package control is the mesh control plane of one node: it computes the
// meshconfig.Sidecar document of every injected pod on the node from the
// cluster's Services, EndpointSlices, Pods and Istio objects, and serves
// it to that pod's sidecar over a unix socket in the pod's mesh directory
// (meshconfig describes the protocol).
//
// Translate is the pure heart: a Snapshot of the API objects and one
// proxy's pod in, a Sidecar document and warnings out. Server is the node
// side: informers, debounced recomputation, one socket per local pod,
// per-proxy sync state, published per node in a ConfigMap
// (kube-system/skiff-mesh-status-NODE) for `skiff mesh status`. The
// daemon wires a Server into every node; `skiff mesh explain` runs
// Translate itself against the API (ListSnapshot, Explain).
// Index.Gateways translates Istio Gateways and the VirtualServices bound
// to them into a fragment for the node's edge proxy.
//
// What the translation does not do (yet), and how it differs from Istio:
//
//   - Protocols are not sniffed. A port is HTTP when its name is http,
//     http2, grpc, grpc-web (alone or followed by "-suffix") or its
//     appProtocol is http, http2, grpc, grpc-web, h2c or
//     kubernetes.io/h2c; every other port is TCP (Istio would sniff an
//     unnamed port). Port numbers (80, 8080) are never taken as a hint.
//   - Route tables are per service port ("outbound|PORT||HOST"), with the
//     service's names and "*" as domains: the capture chain already
//     picked the service by ClusterIP:port, so a request whose Host names
//     another service still reaches this one's routes. Domains carry no
//     ":port" variants: the proxy strips the port before matching.
//   - As in Istio, when a VirtualService applies to a host its routes are
//     the only ones (an unmatched request gets 404); only hosts without
//     one get the default route to the service.
//   - Headless Services and ServiceEntries with resolution NONE are TCP
//     passthrough chains to the original destination (no HTTP routing).
//     A ServiceEntry without addresses matches its ports on any address;
//     for an HTTP port a Host that matches none of its hosts gets 404
//     (Istio would pass it through under ALLOW_ANY).
//   - gRPC-status retry conditions (unavailable, cancelled, ...) are
//     dropped: the proxy retries on HTTP conditions only.
//   - exportTo, delegate VirtualServices, TLS routes, DestinationRule
//     workload selectors, locality load balancing and TLS credentials
//     from Secrets or files are ignored (a warning says so where used).
package control
