// Package istio serves Istio's configuration kinds through Skiff's API
// server with the istio.io/client-go types: VirtualService,
// DestinationRule, Gateway, ServiceEntry and Sidecar
// (networking.istio.io v1, v1beta1, v1alpha3) and PeerAuthentication,
// AuthorizationPolicy and RequestAuthentication (security.istio.io v1,
// v1beta1).
//
// Every version of a kind shares one schema (Istio's Go types for v1 and
// v1beta1 are aliases of v1alpha3), so objects are stored as v1 and the
// other versions are served by copying with the apiVersion rewritten
// (Convert). Before decoding, PreDecode checks a request's JSON against
// the kinds' protobuf descriptors, since Istio's protobuf-JSON decoding
// drops unknown fields silently: it reports unknown fields by path, type
// errors as field errors, and maps deprecated fields the decoder no longer
// knows. Default maps the deprecated fields the Go types still carry;
// ValidateCreate and ValidateUpdate apply the important rules of Istio's
// own validation (istio/istio pkg/config/validation) with errors naming
// the field path.
//
// Clients need nothing of Skiff's: istio.io/client-go's versioned
// clientset (NewForConfig here) and its informers speak the JSON REST API
// the server serves.
//
// Only the daemon wires this package into the API server; anyone may use
// NewForConfig.
package istio
