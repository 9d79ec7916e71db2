package ca

// How a node asks the server for a pod's workload certificate: a
// certificates.k8s.io/v1 CertificateSigningRequest with this signer name,
// the pod named by annotations, the PKCS#10 request naming the pod's
// SPIFFE ID. The signer approves it when the requester is the pod's node
// (system:node:NAME in group system:nodes) or an admin (system:masters)
// and the ID is the pod's namespace and service account.
const (
	SignerName = "skiff.dev/mesh-workload"

	PodNamespaceAnnotation = "mesh.skiff.dev/pod-namespace"
	PodNameAnnotation      = "mesh.skiff.dev/pod-name"
	// PodUIDAnnotation, when set, must be the pod's UID.
	PodUIDAnnotation = "mesh.skiff.dev/pod-uid"
)

// The trusted mesh roots are published, as Istio does, in a ConfigMap of
// every namespace.
const (
	RootsConfigMap = "istio-ca-root-cert"
	RootsKey       = "root-cert.pem"
)
