// Package defaults fills in the fields kube-apiserver defaults on the
// built-in types Skiff serves, so that what a client reads back
// (kubectl get -o yaml) matches what an upstream cluster would show.
//
// Default works on the versioned k8s.io/api types; Skiff has no internal
// version. Besides upstream's defaulting functions it also covers the few
// create-time fills upstream does in its registry strategies and that a
// user sees in the stored object (Job selector generation, the Namespace
// "kubernetes" finalizer, Service clusterIPs and IP families, Secret
// stringData). Default never allocates anything (cluster IPs, node ports)
// and never fails; it is idempotent, so calling it again on an object read
// from storage is harmless.
//
// The API server imports it (on create, update and when reading from
// storage); controllers and tests may import it to build objects the way
// the server would store them. It imports only API types.
package defaults
