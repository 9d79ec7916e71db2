// Package validation checks the built-in objects Skiff serves the way
// kube-apiserver does, and reports problems as upstream-style field errors
// (k8s.io/apimachinery/pkg/util/validation/field) in upstream's words and
// with upstream's field paths, so the API server can turn them into the
// same 422 Status a client would get from an upstream cluster.
//
// Validation works on the versioned k8s.io/api types and expects objects
// that have been through defaults.Default, as upstream validates after
// defaulting. It never modifies its arguments and never panics on any
// decodable input.
//
// ValidateUpdate follows upstream's update rules, which assume the API
// server has already done what upstream's generic registry does before
// validating: filled metadata.resourceVersion for unconditional updates,
// carried uid, creationTimestamp and deletionTimestamp over from the stored
// object, kept status out of spec updates, and kept allocated values
// (Service clusterIP/clusterIPs, node ports) the client left out.
//
// The API server imports it; so may admission code and tests.
package validation
